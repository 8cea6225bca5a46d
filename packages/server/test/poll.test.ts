import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectJsonError } from './helpers/http-assertions.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

interface PolledEvent {
  id: string;
  topic: string;
  type: string;
  ts: string;
  payload: unknown;
}
interface PollBody {
  events: PolledEvent[];
  lastEventId: string;
  reset?: { reason: string; since?: string };
}

describe('GET /api/sse/poll', () => {
  let server: TestApp;

  beforeAll(async () => {
    server = await startTestApp();
  });
  afterAll(async () => {
    await server?.close();
  });

  async function poll(token: string, query: string): Promise<{ status: number; body: PollBody; ms: number }> {
    const started = Date.now();
    const response = await fetch(`${server.url}/api/sse/poll${query}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    return { status: response.status, body: (await response.json()) as PollBody, ms: Date.now() - started };
  }

  /**
   * Resolves once the waiting poll has subscribed (one more topic subscription than `before`), so
   * an event published now is one it must see. Reads state only; nothing is stubbed.
   */
  async function untilSubscribed(before: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (server.app.realtime.internals.connections.stats().topics <= before) {
      if (Date.now() > deadline) throw new Error('the poll never subscribed');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  it('without `after`, waits for the next event and returns it', async () => {
    const token = await server.token('poll-wait');
    const before = server.app.realtime.internals.connections.stats().topics;
    const waiting = poll(token, '?timeoutMs=20000');
    await untilSubscribed(before);
    const { id } = await server.publish({ topic: 'user:poll-wait', payload: { title: 'next', level: 'warning' } });

    const { body, ms } = await waiting;
    expect(ms).toBeLessThan(15_000);
    expect(body.reset).toBeUndefined();
    expect(body.events).toHaveLength(1);
    expect(body.events[0]).toMatchObject({
      id,
      topic: 'user:poll-wait',
      type: 'notification',
      payload: { title: 'next', level: 'warning' },
    });
    expect(body.lastEventId).toBe(id);
  });

  it('with `after=<id>`, returns the events after it at once, only on the user’s topics', async () => {
    const token = await server.token('poll-after');
    const { id: first } = await server.publish({ topic: 'user:poll-after', payload: { title: 'one', level: 'info' } });
    const { id: second } = await server.publish({ topic: 'user:poll-after', payload: { title: 'two', level: 'info' } });
    await server.publish({ topic: 'user:someone-else', payload: { title: 'not yours', level: 'info' } });
    const { id: third } = await server.publish({
      topic: 'user:poll-after',
      payload: { title: 'three', level: 'error' },
      critical: true,
    });
    await server.publish({ topic: 'user:someone-else', payload: { title: 'not yours', level: 'info' } });

    const { body, ms } = await poll(token, `?after=${first}&timeoutMs=20000`);
    expect(ms).toBeLessThan(10_000);
    expect(body.reset).toBeUndefined();
    expect(body.events.map((event) => event.id)).toEqual([second, third]);
    expect(body.events.map((event) => (event.payload as { title: string }).title)).toEqual(['two', 'three']);
    expect(body.lastEventId).toBe(third);
    for (const event of body.events) {
      expect(Object.keys(event).sort()).toEqual(['id', 'payload', 'topic', 'ts', 'type']);
      expect(event.topic).toBe('user:poll-after');
      expect(new Date(event.ts).toISOString()).toBe(event.ts);
    }

    // Following lastEventId continues without duplicates.
    const { id: fourth } = await server.publish({ topic: 'user:poll-after' });
    const next = await poll(token, `?after=${body.lastEventId}&timeoutMs=20000`);
    expect(next.body.events.map((event) => event.id)).toEqual([fourth]);
  });

  it('with nothing new, answers {events: [], lastEventId} after timeoutMs', async () => {
    const token = await server.token('poll-idle');
    const { id } = await server.publish({ topic: 'user:poll-idle' });
    const { body, ms } = await poll(token, `?after=${id}&timeoutMs=200`);
    expect(body).toEqual({ events: [], lastEventId: id });
    expect(ms).toBeGreaterThanOrEqual(150);
    expect(ms).toBeLessThan(10_000);

    // Without `after` too: lastEventId is a resume point that later polls accept.
    const idle = await poll(token, '?timeoutMs=200');
    expect(idle.body.events).toEqual([]);
    expect(idle.body.lastEventId).toMatch(/^[0-9A-Za-z._-]{1,64}$/);
    expect(idle.ms).toBeGreaterThanOrEqual(150);
    const resumed = await poll(token, `?after=${idle.body.lastEventId}&timeoutMs=200`);
    expect(resumed.body.reset).toBeUndefined();
  });

  it.each([['garbage'], ['-1'], ['1e9'], ['99999999999999999999'], ['9000000000000000']])(
    'answers a malformed or unknown `after` (%s) with reset unknown_id and no events',
    async (after) => {
      const token = await server.token('poll-reset');
      await server.publish({ topic: 'user:poll-reset' });
      const { body, ms } = await poll(token, `?after=${encodeURIComponent(after)}&timeoutMs=20000`);
      expect(ms).toBeLessThan(10_000);
      expect(body.reset).toEqual({ reason: 'unknown_id' });
      expect(body.events).toEqual([]);
      expect(body.lastEventId).toMatch(/^[0-9A-Za-z._-]{1,64}$/);
    },
  );

  it('honours `topics` with the same access rules as the stream', async () => {
    const token = await server.token('poll-topics', { topics: ['doc:5'] });
    const { id: before } = await server.publish({ topic: 'doc:5' });
    await server.publish({ topic: 'user:poll-topics' });
    const { id: doc } = await server.publish({ topic: 'doc:5' });
    const { body } = await poll(token, `?after=${before}&topics=doc:5&timeoutMs=200`);
    expect(body.events.map((event) => event.id)).toEqual([doc]);

    // Default topics: user:<sub> plus the granted ones.
    const all = await poll(token, `?after=${before}&timeoutMs=200`);
    expect(all.body.events.map((event) => event.topic)).toEqual(['user:poll-topics', 'doc:5']);

    const forbidden = await fetch(`${server.url}/api/sse/poll?topics=doc:6&timeoutMs=0`, {
      headers: { authorization: `Bearer ${token}` },
    });
    await expectJsonError(forbidden, 403, 'forbidden_topic');
  });

  it.each([['999999'], ['-1'], ['abc'], ['30001']])(
    'refuses timeoutMs=%s with 400 invalid_request',
    async (timeoutMs) => {
      const token = await server.token('poll-bad');
      const response = await fetch(`${server.url}/api/sse/poll?timeoutMs=${timeoutMs}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      await expectJsonError(response, 400, 'invalid_request');
    },
  );

  it('needs credentials: 401 without, cookie works', async () => {
    await expectJsonError(await fetch(`${server.url}/api/sse/poll?timeoutMs=0`), 401, 'unauthorized');
    const token = await server.token('poll-cookie');
    const { id } = await server.publish({ topic: 'user:poll-cookie' });
    const { id: next } = await server.publish({ topic: 'user:poll-cookie' });
    const response = await fetch(`${server.url}/api/sse/poll?after=${id}&timeoutMs=200`, {
      headers: { cookie: `access_token=${token}` },
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as PollBody).events.map((event) => event.id)).toEqual([next]);
  });
});
