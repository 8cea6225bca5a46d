import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDevToken } from '../src/adapters/auth/dev-token.js';
import { expectJsonError } from './helpers/http-assertions.js';
import { hasRedisServer, startRedisProcess, type RedisProcess } from './helpers/redis-process.js';
import { startServerProcess, type ServerProcess } from './helpers/server-process.js';
import { openStream, type StreamReader } from './helpers/sse-reader.js';
import { TEST_JWT_SECRET } from './helpers/test-app.js';

const available = hasRedisServer();
if (!available)
  console.warn('\n⚠️  SKIPPING cluster-wide limit tests: no redis-server binary to start one of our own\n');

const LEASE_TTL_MS = 2_000;

const token = (userId: string) => signDevToken(TEST_JWT_SECRET, { userId, expiresIn: 3600 });

async function refused(url: string, userId: string): Promise<void> {
  const response = await fetch(`${url}/api/sse/stream`, {
    headers: { authorization: `Bearer ${await token(userId)}` },
  });
  await expectJsonError(response, 429, 'too_many_connections');
  expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
}

describe.skipIf(!available)('MAX_CONNECTIONS_PER_USER across the cluster (two real instances, own Redis)', () => {
  let redis: RedisProcess;
  const dataDirs: string[] = [];
  const instances: ServerProcess[] = [];
  const streams: StreamReader[] = [];

  async function open(url: string, userId: string): Promise<StreamReader> {
    const stream = await openStream(url, { token: await token(userId) });
    streams.push(stream);
    expect(stream.status).toBe(200);
    await stream.waitFor((events) => events.some((event) => event.event === 'connection.established'));
    return stream;
  }

  beforeAll(async () => {
    redis = await startRedisProcess();
    const start = () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'is-limit-'));
      dataDirs.push(dataDir);
      return startServerProcess({
        REDIS_URL: redis.url,
        DATA_DIR: dataDir,
        MAX_CONNECTIONS_PER_USER: '2',
        CONNECTION_LEASE_TTL_MS: String(LEASE_TTL_MS),
      });
    };
    instances.push(...(await Promise.all([start(), start()])));
  }, 120_000);

  afterAll(async () => {
    for (const stream of streams) stream.close();
    await Promise.all(instances.map((instance) => instance.stop('SIGTERM')));
    await redis?.stop();
    for (const dataDir of dataDirs) rmSync(dataDir, { recursive: true, force: true });
  });

  it('counts streams on every instance, frees a slot on close, and expires the leases of a killed instance', async () => {
    const [a, b] = instances;
    if (!a || !b) throw new Error('instances missing');
    const onA = await open(a.url, 'capped');
    await open(b.url, 'capped');
    // One stream on each instance: the user is at the limit everywhere.
    await refused(a.url, 'capped');
    await refused(b.url, 'capped');

    onA.close();
    await onA.ended;
    const again = await (async () => {
      const deadline = Date.now() + 5_000;
      for (;;) {
        const stream = await openStream(a.url, { token: await token('capped') });
        streams.push(stream);
        if (stream.status === 200 || Date.now() > deadline) return stream;
        stream.close();
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    expect(again.status).toBe(200);
    await refused(b.url, 'capped');

    // kill -9: A cannot give its lease back; it keeps counting until its TTL runs out, then frees.
    await a.stop('SIGKILL');
    const killedAt = Date.now();
    await refused(b.url, 'capped');
    let freedAfterMs = -1;
    const deadline = killedAt + LEASE_TTL_MS * 5;
    while (freedAfterMs < 0) {
      const stream = await openStream(b.url, { token: await token('capped') });
      streams.push(stream);
      if (stream.status === 200) freedAfterMs = Date.now() - killedAt;
      else if (Date.now() > deadline) throw new Error('the killed instance’s lease never expired');
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(freedAfterMs).toBeGreaterThan(LEASE_TTL_MS / 3);
    // B's two streams stay counted past several TTLs: their leases are refreshed while open.
    await new Promise((resolve) => setTimeout(resolve, LEASE_TTL_MS * 1.5));
    await refused(b.url, 'capped');

    // Redis gone: the per-instance limit still applies, and streams still open (no blanket refusal).
    await redis.stop();
    await open(b.url, 'while-redis-is-down');
  }, 90_000);
});
