import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/test-app.js';
import { ofType, openStream, published } from './helpers/sse-reader.js';

async function waitFor(predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('GET /api/sse/stream', () => {
  let server: TestApp;
  beforeEach(async () => {
    server = await startTestApp();
  });
  afterEach(async () => {
    await server.close();
  });

  it('sends the headers, retry, connection.established, then published events as envelopes', async () => {
    const stream = await openStream(server.url, { token: await server.token('u1') });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(stream.headers.get('cache-control')).toBe('no-cache, no-transform');
    expect(stream.headers.get('x-accel-buffering')).toBe('no');
    expect(stream.headers.get('content-encoding')).toBeNull();
    await stream.waitFor((events) => events.some((event) => event.event === 'connection.established'));
    expect(stream.raw().startsWith('retry: 2000\n\n')).toBe(true);
    const [established] = ofType<{ connectionId: string; topics: string[] }>(stream.events, 'connection.established');
    expect(established?.topics).toEqual(['user:u1']);
    expect(stream.events[0]?.id).toBeUndefined();

    const { status, id } = await server.publish({ topic: 'user:u1', payload: { title: 'Hello', level: 'success' } });
    expect(status).toBe(202);
    await stream.waitFor((events) => published(events).length === 1);
    const [event] = published(stream.events);
    expect(event?.id).toBe(id);
    expect(event?.event).toBe('notification');
    const envelope = JSON.parse(event?.data ?? '{}') as Record<string, unknown>;
    expect(Object.keys(envelope)).toEqual(['topic', 'type', 'ts', 'payload']);
    expect(envelope).toMatchObject({
      topic: 'user:u1',
      type: 'notification',
      payload: { title: 'Hello', level: 'success' },
    });
    expect(new Date(envelope['ts'] as string).toISOString()).toBe(envelope['ts']);
    stream.close();
  });

  it('refuses a query it cannot read (a repeated parameter) with a 400 before the stream starts; other parameters pass', async () => {
    const token = await server.token('u1');
    for (const query of ['lastEventId=1&lastEventId=2', 'topics=user:u1&topics=user:u1', 'ticket=a&ticket=b']) {
      for (const method of ['GET', 'HEAD']) {
        const response = await fetch(`${server.url}/api/sse/stream?${query}`, {
          method,
          headers: { authorization: `Bearer ${token}` },
        });
        expect(response.status, `${method} ?${query}`).toBe(400);
        if (method === 'GET') {
          const body = (await response.json()) as { error: { code: string; message: string } };
          expect(body.error.code).toBe('invalid_request');
          expect(body.error.message).toContain(query.split('=')[0]);
        } else await response.arrayBuffer();
      }
    }
    // A parameter the stream does not know (a cache buster) is no error.
    const stream = await openStream(server.url, { token, query: { _: '1700000000000' } });
    expect(stream.status).toBe(200);
    stream.close();
  });

  it('delivers only the connection’s topics', async () => {
    const stream = await openStream(server.url, { token: await server.token('u1') });
    await server.publish({ topic: 'user:u2' });
    const { id } = await server.publish({ topic: 'user:u1' });
    await stream.waitFor((events) => published(events).length === 1);
    expect(published(stream.events).map((event) => event.id)).toEqual([id]);
    stream.close();
  });

  it('never streams a server-internal topic, even when a token grants it', async () => {
    const token = await server.token('u1', { topics: ['ai-generations', 'tasks', 'doc:1'] });
    const tasks = await fetch(`${server.url}/api/sse/stream?topics=tasks`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(tasks.status).toBe(403);
    const injected = await server.publish({ topic: 'tasks' });
    expect(injected.status).toBe(403);
    const explicit = await fetch(`${server.url}/api/sse/stream?topics=ai-generations`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(explicit.status).toBe(403);
    expect(await explicit.json()).toMatchObject({ error: { code: 'forbidden_topic' } });
    const stream = await openStream(server.url, { token });
    await stream.waitFor((events) => events.some((event) => event.event === 'connection.established'));
    expect(ofType<{ topics: string[] }>(stream.events, 'connection.established')[0]?.topics).toEqual([
      'user:u1',
      'doc:1',
    ]);
    stream.close();
  });

  it('tells a fresh stream where it starts, so a first outage before any event resumes without loss', async () => {
    const token = await server.token('fresh');
    const { id: before } = await server.publish({ topic: 'user:fresh' });
    const stream = await openStream(server.url, { token });
    await stream.waitFor((events) => events.some((event) => event.event === 'connection.established'));
    const [established] = ofType<{ lastEventId?: string }>(stream.events, 'connection.established');
    expect(established?.lastEventId).toBe(before);
    expect(published(stream.events)).toEqual([]);
    stream.close();
    await stream.ended;
    const during = [
      (await server.publish({ topic: 'user:fresh' })).id,
      (await server.publish({ topic: 'user:fresh' })).id,
    ];
    const resumed = await openStream(server.url, { token, lastEventId: established?.lastEventId ?? '' });
    await resumed.waitFor((events) => events.some((event) => event.event === 'stream.resumed'));
    expect(published(resumed.events).map((event) => event.id)).toEqual(during);
    expect(ofType(resumed.events, 'stream.resumed')).toEqual([{ replayed: 2, complete: true }]);
    resumed.close();
  });
  it('puts the same frames on the wire for HTTP/1.1 (one chunk per event) and HTTP/1.0 (a plain body)', async () => {
    const port = Number(new URL(server.url).port);
    const token = await server.token('wire');
    const open = (version: string) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.write(`GET /api/sse/stream HTTP/${version}\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n\r\n`);
      let bytes = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => (bytes = Buffer.concat([bytes, chunk])));
      return { socket, bytes: () => bytes };
    };
    const modern = open('1.1');
    const legacy = open('1.0');
    const established = (raw: Buffer) => raw.includes('event: connection.established');
    await waitFor(() => established(modern.bytes()) && established(legacy.bytes()));
    const ids: string[] = [];
    for (const title of ['one', 'two ü', 'three\nlines']) {
      ids.push((await server.publish({ topic: 'user:wire', payload: { title, level: 'info' } })).id);
    }
    // Until the last event's frame (and, on HTTP/1.1, its chunk) has arrived whole.
    const lastFrame = `id: ${ids.at(-1)}\n`;
    const whole = (raw: Buffer, ending: string) => raw.includes(lastFrame) && raw.toString('latin1').endsWith(ending);
    await waitFor(() => whole(modern.bytes(), '\n\n\r\n') && whole(legacy.bytes(), '\n\n'));
    modern.socket.destroy();
    legacy.socket.destroy();

    const split = (raw: Buffer) => {
      const headEnd = raw.indexOf('\r\n\r\n');
      return { head: raw.subarray(0, headEnd).toString('latin1'), body: raw.subarray(headEnd + 4) };
    };
    const chunked = split(modern.bytes());
    expect(chunked.head).toMatch(/\r\ntransfer-encoding: chunked/i);
    const chunks: Buffer[] = [];
    let at = 0;
    while (at < chunked.body.length) {
      const lineEnd = chunked.body.indexOf('\r\n', at);
      const size = Number.parseInt(chunked.body.subarray(at, lineEnd).toString('latin1'), 16);
      chunks.push(chunked.body.subarray(lineEnd + 2, lineEnd + 2 + size));
      expect(chunked.body.subarray(lineEnd + 2 + size, lineEnd + 4 + size).toString('latin1')).toBe('\r\n');
      at = lineEnd + 4 + size;
    }
    const plain = split(legacy.bytes());
    expect(plain.head).not.toMatch(/transfer-encoding/i);
    const eventFrames = (body: string) => body.split(/(?<=\n\n)/).filter((frame) => frame.startsWith('id: '));
    const fromChunks = chunks.map((chunk) => chunk.toString('utf8'));
    // Every event is exactly one chunk, and the event frames are byte for byte the same on both.
    expect(fromChunks.filter((chunk) => chunk.startsWith('id: '))).toEqual(eventFrames(fromChunks.join('')));
    expect(eventFrames(fromChunks.join(''))).toHaveLength(3);
    expect(eventFrames(plain.body.toString('utf8'))).toEqual(eventFrames(fromChunks.join('')));
  });
});

describe('heartbeats', () => {
  let server: TestApp;
  afterEach(async () => {
    await server.close();
  });

  it('reach every stream again and again, without an id, from the one sweep of all streams', async () => {
    server = await startTestApp({ HEARTBEAT_MS: '1000' });
    const streams = await Promise.all(
      ['hb1', 'hb2', 'hb3'].map(async (user) => openStream(server.url, { token: await server.token(user) })),
    );
    const heartbeats = (stream: (typeof streams)[number]) => ofType<{ ts: string }>(stream.events, 'heartbeat');
    for (const stream of streams) await stream.waitFor(() => heartbeats(stream).length >= 2, 10_000);
    for (const stream of streams) {
      expect(
        stream.events.filter((event) => event.event === 'heartbeat').every((event) => event.id === undefined),
      ).toBe(true);
      for (const { ts } of heartbeats(stream)) expect(new Date(ts).toISOString()).toBe(ts);
      stream.close();
    }
  });
});
