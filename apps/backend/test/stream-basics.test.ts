import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/test-app.js';
import { ofType, openStream, published } from './helpers/sse-reader.js';

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
});
