import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFreezableProxy, type FreezableProxy } from './helpers/freezable-proxy.js';
import { hasRedisServer, startRedisProcess, type RedisProcess } from './helpers/redis-process.js';
import { openStream, published } from './helpers/sse-reader.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

const available = hasRedisServer();
if (!available) console.warn('\n⚠️  SKIPPING bus probe tests: no redis-server binary to start one of our own\n');

interface Ready {
  status: string;
  bus: { kind: string; status: string; detail?: string };
}

async function readyz(url: string): Promise<{ code: number; body: Ready }> {
  const response = await fetch(`${url}/readyz`);
  return { code: response.status, body: (await response.json()) as Ready };
}

async function eventually<T>(probe: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met in time; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * The wedge is real network behaviour: a proxy between the server and its own Redis silently
 * drops the subscriber connection's traffic (both ways) while the socket stays open, as a
 * middlebox that lost the flow does. ioredis still says `ready`, PING and PUBLISH on the command
 * connection still work; only the probe travelling the live-event path notices.
 */
describe.skipIf(!available)('the self-addressed bus probe (own Redis behind a proxy)', () => {
  let redis: RedisProcess;
  let proxy: FreezableProxy;
  let server: TestApp;

  beforeAll(async () => {
    redis = await startRedisProcess();
    proxy = await startFreezableProxy(redis.port);
    server = await startTestApp({
      REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
      BUS_PROBE_INTERVAL_MS: '100',
      BUS_PROBE_TIMEOUT_MS: '500',
    });
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    await proxy?.close();
    await redis?.stop();
  });

  it('reports a deaf subscriber as down (503) while publishes still work, then recovers losing nothing', async () => {
    expect(await readyz(server.url)).toMatchObject({ code: 200, body: { status: 'ok', bus: { status: 'up' } } });
    const stream = await openStream(server.url, { token: await server.token('probe') });
    const first = await server.publish({ topic: 'user:probe' });
    await stream.waitFor((events) => published(events).some((event) => event.id === first.id));

    proxy.freeze('infinitescribe:sub');
    // The command path is fine: the publish is accepted (through Redis), it just never comes back.
    const during = await server.publish({ topic: 'user:probe' });
    expect(during.status).toBe(202);
    const wedged = await eventually(
      () => readyz(server.url),
      (ready) => ready.code === 503,
    );
    expect(wedged.body).toMatchObject({ status: 'unavailable', bus: { kind: 'redis', status: 'down' } });
    expect(wedged.body.bus.detail).toMatch(/subscriber wedged/);
    expect(published(stream.events).some((event) => event.id === during.id)).toBe(false);

    // The path heals: the subscriber reconnects, re-reads the log, and the stream gets what it missed.
    proxy.thaw();
    await eventually(
      () => readyz(server.url),
      (ready) => ready.code === 200 && ready.body.status === 'ok',
      15_000,
    );
    await stream.waitFor((events) => published(events).some((event) => event.id === during.id), 15_000);
    const after = await server.publish({ topic: 'user:probe' });
    await stream.waitFor((events) => published(events).some((event) => event.id === after.id));
    expect(published(stream.events).map((event) => event.id)).toEqual([first.id, during.id, after.id]);
    stream.close();
  }, 60_000);
});
