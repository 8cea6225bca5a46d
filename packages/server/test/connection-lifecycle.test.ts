import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { openRawStream, type RawStream } from './helpers/raw-stream.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

const PROXY_SCRIPT = new URL('./helpers/tcp-proxy-process.ts', import.meta.url).pathname;

async function metric(server: TestApp, name: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((candidate) => candidate.startsWith(`${name} `) || candidate.startsWith(`${name}{`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

async function waitUntil(predicate: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('connection lifecycle', () => {
  let server: TestApp | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('returns the registry and metrics to zero after 2,000 streams end in every way', async () => {
    server = await startTestApp({ MAX_CONNECTIONS_PER_IP: '10000', AUTH_EXPIRY_WARNING_MS: '0' });
    const app = server;
    const port = Number(new URL(app.url).port);
    const proxy = spawn(process.execPath, ['--import', 'tsx', PROXY_SCRIPT, String(port)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const proxyPort = await new Promise<number>((resolve, reject) => {
        proxy.stdout.on('data', (chunk: Buffer) => {
          const match = /PORT (\d+)/.exec(chunk.toString());
          if (match) resolve(Number(match[1]));
        });
        proxy.once('exit', () => reject(new Error('proxy exited')));
      });
      const ways = ['client_fin', 'client_reset', 'proxy_kill', 'server_expiry'] as const;
      const streams: { way: (typeof ways)[number]; stream: RawStream }[] = [];
      // Expiring streams are opened last with a margin, so none expires before all are counted.
      for (const way of ways) {
        for (let index = 0; index < 500; index++) {
          const userId = `life-${way}-${index}`;
          const token = await app.token(userId, { expiresIn: way === 'server_expiry' ? 10 : 3600 });
          streams.push({
            way,
            stream: openRawStream(way === 'proxy_kill' ? proxyPort : port, '/api/sse/stream', token),
          });
          if (index % 100 === 99) await Promise.all(streams.slice(-100).map((entry) => entry.stream.established));
        }
      }
      await Promise.all(streams.map((entry) => entry.stream.established));
      expect(app.app.realtime.internals.connections.stats()).toEqual({
        connections: 2_000,
        users: 2_000,
        ips: 1,
        topics: 2_000,
      });
      expect(await metric(app, 'sse_connections_active')).toBe(2_000);

      for (const { way, stream } of streams) {
        if (way === 'client_fin') stream.socket.end();
        if (way === 'client_reset') stream.socket.resetAndDestroy();
      }
      proxy.kill('SIGKILL');
      await Promise.all(streams.filter((entry) => entry.way !== 'server_expiry').map((entry) => entry.stream.closed));
      // Expiring tokens end their streams server-side: auth.expired, then the response ends (the
      // socket itself may stay open for keep-alive reuse, as HTTP allows).
      await waitUntil(() => app.app.realtime.internals.connections.size === 0);
      const expiring = streams.filter((entry) => entry.way === 'server_expiry').map((entry) => entry.stream);
      await waitUntil(() => expiring.every((stream) => stream.eventNames.at(-1) === 'auth.expired'));
      for (const { stream } of streams) stream.socket.destroy();
      expect(app.app.realtime.internals.connections.stats()).toEqual({ connections: 0, users: 0, ips: 0, topics: 0 });
      expect(await metric(app, 'sse_connections_active')).toBe(0);
      expect(await metric(app, 'sse_connections_total')).toBe(2_000);
      const text = await (await fetch(`${app.url}/metrics`)).text();
      expect(text).toMatch(/sse_disconnects_total\{reason="auth_expired"\} 500/);
      expect(text).toMatch(/sse_disconnects_total\{reason="client_closed"\} 1500/);
      // The slots are really free again: the same users can connect anew.
      const again = openRawStream(port, '/api/sse/stream', await app.token('life-client_fin-0'));
      await again.established;
      again.socket.destroy();
    } finally {
      if (proxy.exitCode === null) proxy.kill('SIGKILL');
    }
  }, 180_000);

  it('refuses streams past the per-user and per-IP limits with 429 and Retry-After, before any stream byte', async () => {
    server = await startTestApp({ MAX_CONNECTIONS_PER_USER: '2', MAX_CONNECTIONS_PER_IP: '3' });
    const app = server;
    const port = Number(new URL(app.url).port);
    const token = await app.token('limited');
    const open = [openRawStream(port, '/api/sse/stream', token), openRawStream(port, '/api/sse/stream', token)];
    await Promise.all(open.map((stream) => stream.established));
    const refused = await fetch(`${app.url}/api/sse/stream`, { headers: { authorization: `Bearer ${token}` } });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(refused.headers.get('content-type')).toMatch(/application\/json/);
    expect(await refused.json()).toMatchObject({ error: { code: 'too_many_connections' } });
    const third = openRawStream(port, '/api/sse/stream', await app.token('other'));
    await third.established;
    const byIp = await fetch(`${app.url}/api/sse/stream`, {
      headers: { authorization: `Bearer ${await app.token('x')}` },
    });
    expect(byIp.status).toBe(429);
    await byIp.body?.cancel();
    for (const stream of [...open, third]) stream.socket.destroy();
    await waitUntil(() => app.app.realtime.internals.connections.size === 0);
    const after = openRawStream(port, '/api/sse/stream', token);
    await after.established;
    after.socket.destroy();
  });

  it('disconnects a reader that never reads, without delaying the 100 others', async () => {
    server = await startTestApp({ MAX_BUFFERED_BYTES: '65536', HEARTBEAT_MS: '600000' });
    const app = server;
    const port = Number(new URL(app.url).port);
    const path = '/api/sse/stream?topics=broadcast';
    const readers = await Promise.all(
      Array.from({ length: 100 }, async (_, index) =>
        openRawStream(port, path, await app.token(`r${index}`, { topics: ['broadcast'] })),
      ),
    );
    const stalled = openRawStream(port, path, await app.token('stalled', { topics: ['broadcast'] }), { read: false });
    await Promise.all([...readers, stalled].map((stream) => stream.established));
    // A paused client never reads the server's reset, so the server's registry is what tells.
    const stalledIsOpen = () => app.app.realtime.internals.connections.size === 101;
    const body = 'x'.repeat(19_000);
    const published: string[] = [];
    // Every event must reach all 100 readers while the stalled one is still connected and
    // filling up, until the server cuts it loose.
    for (let index = 0; index < 2_000 && stalledIsOpen(); index++) {
      const { id } = await app.publish({ topic: 'broadcast', payload: { title: `big ${index}`, body, level: 'info' } });
      published.push(id);
      if (index % 10 === 9)
        await waitUntil(() => readers.every((reader) => reader.ids.length === published.length), 10_000);
    }
    await waitUntil(() => readers.every((reader) => reader.ids.length === published.length));
    expect(stalledIsOpen()).toBe(false);
    expect(stalled.ids.length).toBeLessThan(published.length);
    for (const reader of readers) expect(reader.ids).toEqual(published);
    const text = await (await fetch(`${app.url}/metrics`)).text();
    expect(text).toMatch(/sse_disconnects_total\{reason="slow_consumer"\} 1/);
    expect(app.app.realtime.internals.connections.size).toBe(100);
    stalled.socket.destroy();
    for (const reader of readers) reader.socket.destroy();
  }, 180_000);

  it('replays a backlog far past MAX_BUFFERED_BYTES at the pace of a client that pauses, and drops one that stops reading once live events pile up', async () => {
    server = await startTestApp({ MAX_BUFFERED_BYTES: '65536', HEARTBEAT_MS: '600000' });
    const app = server;
    const port = Number(new URL(app.url).port);
    const path = '/api/sse/stream?topics=doc:backlog';
    const body = 'x'.repeat(19_000);
    const backlog: string[] = [];
    // 12 MB: more than the kernel's socket buffers take from a client that does not read.
    for (let index = 0; index < 640; index++) {
      const record = await app.app.realtime.internals.publisher.publish({
        topic: 'doc:backlog',
        type: 'notification',
        payload: { title: `big ${index}`, body, level: 'info' },
      });
      backlog.push(String(record.id));
    }
    const token = await app.token('resumer', { topics: ['doc:backlog'] });
    const options = { read: false, lastEventId: backlog[0] };
    const pausing = openRawStream(port, path, token, options);
    const stalled = openRawStream(port, path, token, options);
    await Promise.all([pausing.established, stalled.established]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(app.app.realtime.internals.connections.size).toBe(2);
    pausing.socket.resume();
    await waitUntil(() => pausing.eventNames.includes('stream.resumed'));
    expect(pausing.ids).toEqual(backlog.slice(1));

    const live: string[] = [];
    for (let index = 0; index < 6; index++) {
      const { id } = await app.publish({
        topic: 'doc:backlog',
        payload: { title: `live ${index}`, body, level: 'info' },
      });
      live.push(id);
    }
    await waitUntil(() => app.app.realtime.internals.connections.size === 1);
    await waitUntil(() => pausing.ids.length === backlog.length - 1 + live.length);
    expect(pausing.ids).toEqual([...backlog.slice(1), ...live]);
    expect(await metric(app, 'sse_disconnects_total')).toBe(1);
    const text = await (await fetch(`${app.url}/metrics`)).text();
    expect(text).toMatch(/sse_disconnects_total\{reason="slow_consumer"\} 1/);
    pausing.socket.destroy();
    stalled.socket.destroy();
  }, 60_000);
});
