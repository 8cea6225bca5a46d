import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventDraft } from '../src/core/event-record.js';
import { ofType, openStream, published } from './helpers/sse-reader.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

/** A `task.completed` whose result nests 20,000 deep: JSON.stringify overflows on it. */
function poisoned(topic: string): EventDraft {
  let result: unknown = {};
  for (let level = 0; level < 20_000; level++) result = { nested: result };
  return {
    topic,
    type: 'task.completed',
    payload: { taskId: 't', result },
    ts: new Date().toISOString(),
    critical: false,
  };
}

/**
 * An event in the log that cannot be serialised: the publisher refuses such payloads now, but a
 * log written by an older version (or another instance mid-upgrade) may still hold one. It must
 * cost a reader that one event, said honestly, never the stream, the resume or the poll.
 */
describe('an event in the log that cannot be serialised', () => {
  let server: TestApp;

  beforeAll(async () => {
    server = await startTestApp();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('is skipped by live delivery, and the bus publish that carried it does not fail', async () => {
    const stream = await openStream(server.url, { token: await server.token('poison-live') });
    try {
      await stream.waitFor((events) => events.some((event) => event.event === 'connection.established'));
      // Straight onto the bus, as an older instance could have published it.
      await expect(server.app.realtime.internals.bus.publish(poisoned('user:poison-live'))).resolves.toMatchObject({
        id: expect.any(Number),
      });
      const next = await server.publish({ topic: 'user:poison-live' });
      await stream.waitFor((events) => published(events).some((event) => event.id === next.id));
      expect(published(stream.events).map((event) => event.id)).toEqual([next.id]);
    } finally {
      stream.close();
    }
  });

  it('is skipped by a resume, which says it is incomplete and stays open; a poll answers 200 with a reset', async () => {
    const token = await server.token('poison');
    const first = await server.publish({ topic: 'user:poison' });
    await server.app.realtime.internals.bus.publish(poisoned('user:poison'));
    const after = await server.publish({ topic: 'user:poison' });

    const stream = await openStream(server.url, { token, lastEventId: first.id });
    try {
      await stream.waitFor((events) => events.some((event) => event.event === 'stream.resumed'));
      expect(published(stream.events).map((event) => event.id)).toEqual([after.id]);
      expect(ofType(stream.events, 'stream.resumed')).toEqual([{ replayed: 1, complete: false }]);
      const live = await server.publish({ topic: 'user:poison' });
      await stream.waitFor((events) => published(events).some((event) => event.id === live.id));

      const response = await fetch(`${server.url}/api/sse/poll?after=${first.id}&timeoutMs=0`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { events: { id: string }[]; reset?: unknown };
      expect(body.events.map((event) => event.id)).toEqual([after.id, live.id]);
      expect(body.reset).toEqual({ reason: 'gap' });
    } finally {
      stream.close();
    }
  });
});
