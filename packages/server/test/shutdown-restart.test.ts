import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { clusterToken, publishNotification } from './helpers/cluster.js';
import { startServerProcess, type ServerProcess } from './helpers/server-process.js';
import { ofType, openStream, published } from './helpers/sse-reader.js';
import { startTestApp } from './helpers/test-app.js';

const token = clusterToken;

describe('graceful shutdown and restart (real processes, embedded store on disk)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'is-restart-'));
  let server: ServerProcess | undefined;
  afterEach(async () => {
    await server?.stop('SIGKILL');
    server = undefined;
  });

  it('ends streams cleanly on SIGTERM, exits 0 in time, and resumes across restarts without going backwards', async () => {
    server = await startServerProcess({ DATA_DIR: dataDir });
    const first = server;
    const streams = await Promise.all([
      openStream(first.url, { token: await token('u1') }),
      openStream(first.url, { token: await token('u1') }),
    ]);
    const before = [
      await publishNotification(first.url, { topic: 'user:u1', title: 'a', critical: true }),
      await publishNotification(first.url, { topic: 'user:u1', title: 'b' }),
      await publishNotification(first.url, { topic: 'user:u1', title: 'c', critical: true }),
    ];
    for (const stream of streams) await stream.waitFor((events) => published(events).length === 3);

    const stoppedAt = Date.now();
    expect(await first.stop('SIGTERM')).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(10_000);
    // Both streams were ended by the server, not left hanging.
    await Promise.all(streams.map((stream) => stream.ended));

    // Clean restart: the head was recorded, so a caught-up client resumes with nothing lost.
    server = await startServerProcess({ DATA_DIR: dataDir });
    const second = server;
    const resumed = await openStream(second.url, { token: await token('u1'), lastEventId: before.at(-1) ?? '' });
    await resumed.waitFor((events) => events.some((event) => event.event === 'stream.resumed'));
    expect(ofType(resumed.events, 'stream.reset')).toEqual([]);
    expect(ofType(resumed.events, 'stream.resumed')).toEqual([{ replayed: 0, complete: true }]);
    const after = await publishNotification(second.url, { topic: 'user:u1', title: 'd' });
    expect(BigInt(after)).toBeGreaterThan(BigInt(before.at(-1) ?? '0'));
    await resumed.waitFor((events) => published(events).some((event) => event.id === after));
    resumed.close();

    // A client that was behind before the restart: the hot log is gone, so it gets an honest
    // reset and the critical events the store kept, then live.
    const behind = await openStream(second.url, { token: await token('u1'), lastEventId: before[0] ?? '' });
    await behind.waitFor((events) => events.some((event) => event.event === 'stream.resumed'));
    expect(ofType<{ reason: string }>(behind.events, 'stream.reset')[0]?.reason).toBe('gap');
    expect(published(behind.events).map((event) => event.id)).toEqual([before[2], after]);
    expect(ofType(behind.events, 'stream.resumed')).toEqual([{ replayed: 2, complete: false }]);
    behind.close();

    // A crash (SIGKILL): no head is recorded, yet new ids still go up and critical events survive.
    const critical = await publishNotification(second.url, { topic: 'user:u1', title: 'e', critical: true });
    await second.stop('SIGKILL');
    server = await startServerProcess({ DATA_DIR: dataDir });
    const third = server;
    const newest = await publishNotification(third.url, { topic: 'user:u1', title: 'f' });
    expect(BigInt(newest)).toBeGreaterThan(BigInt(critical));
    const crashed = await openStream(third.url, { token: await token('u1'), lastEventId: after });
    await crashed.waitFor((events) => events.some((event) => event.event === 'stream.resumed'));
    expect(ofType<{ reason: string }>(crashed.events, 'stream.reset')[0]?.reason).toBe('gap');
    expect(published(crashed.events).map((event) => event.id)).toEqual([critical, newest]);
    crashed.close();
    expect(await third.stop('SIGTERM')).toBe(0);
    rmSync(dataDir, { recursive: true, force: true });
  }, 180_000);
});

describe('requests arriving during a graceful stop', () => {
  it('answers a request on a kept-alive socket with 503 shutting_down in the API error shape and closes the socket', async () => {
    const origin = 'https://app.example';
    const server = await startTestApp({ SHUTDOWN_DRAIN_MS: '5000', CORS_ORIGINS: origin });
    const publisher = await server.token('publisher', { scope: 'events:publish' });
    const body = JSON.stringify({ topic: 'user:u1', type: 'notification', payload: { title: 't', level: 'info' } });
    const request = (length: number) =>
      `POST /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: ${origin}\r\nAuthorization: Bearer ${publisher}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;
    const socket = net.connect({ host: '127.0.0.1', port: Number(new URL(server.url).port) });
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    const socketClosed = new Promise((resolve) => socket.once('close', resolve));
    // The first publish is in flight (its body half sent) when the stop begins, so the socket is
    // busy and stays open; the second arrives on it while the server is closing.
    socket.write(request(body.length) + body.slice(0, 10));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closed = server.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    socket.write(body.slice(10) + request(body.length) + body);
    await socketClosed;
    await closed;

    const answers = received.split(/(?=HTTP\/1\.1 )/);
    expect(answers).toHaveLength(2);
    expect(answers[0]).toMatch(/^HTTP\/1\.1 202 /);
    const [head = '', json = ''] = (answers[1] ?? '').split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 503 /);
    expect(head).toMatch(/\r\nconnection: close\r\n/i);
    expect(head).toContain(`\r\naccess-control-allow-origin: ${origin}\r\n`);
    expect(head).toMatch(/\r\ncontent-type: application\/json/i);
    expect(JSON.parse(json)).toEqual({ error: { code: 'shutting_down', message: expect.any(String) } });
  });
});
