import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryEventBus } from '../src/adapters/bus/memory-event-bus.js';
import { expectJsonError } from './helpers/http-assertions.js';
import { beforePublish } from './helpers/latency-bus.js';
import { openStream, published, type StreamReader } from './helpers/sse-reader.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

const NOTIFICATION = { title: 'Once', level: 'info' };

/** A publish with an optional Idempotency-Key; the body is sent as given (a string as is). */
function publishWithKey(
  server: TestApp,
  options: { token: string; key?: string; body: unknown; signal?: AbortSignal },
): Promise<Response> {
  return fetch(`${server.url}/api/events`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${options.token}`,
      'content-type': 'application/json',
      ...(options.key !== undefined ? { 'idempotency-key': options.key } : {}),
    },
    body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body),
    signal: options.signal,
  });
}

const freshKey = () => `order-${randomBytes(6).toString('hex')}:retry.1_a`;

const MARKER = { title: 'marker', level: 'info' };

/**
 * Publishes a marker on `topic` and waits until the stream has it (everything published before is
 * then in): the ids of the stream's events, markers left out.
 */
async function settled(server: TestApp, stream: StreamReader, topic: string): Promise<string[]> {
  const { id } = await server.publish({ topic, payload: MARKER });
  await stream.waitFor((events) => published(events).some((event) => event.id === id));
  return published(stream.events)
    .filter((event) => !event.data.includes(JSON.stringify(MARKER)))
    .map((event) => event.id ?? '');
}

describe('POST /api/events with Idempotency-Key (embedded)', () => {
  let server: TestApp;
  let token: string;
  /** While set, each publish waits for it first (keeps a publish in flight). */
  let publishGate: Promise<void> | undefined;
  let failNextPublish = false;

  beforeAll(async () => {
    const bus = beforePublish(new MemoryEventBus({ maxEvents: 1_000, maxAgeMs: 3_600_000 }), async () => {
      if (failNextPublish) {
        failNextPublish = false;
        throw new Error('Redis went away');
      }
      await publishGate;
    });
    server = await startTestApp({}, { bus });
    token = await server.token('idem-service', { scope: 'events:publish' });
  });
  afterAll(async () => {
    await server?.close();
  });

  /**
   * Runs `test` with a stream on `user:<userId>` and every publish held until `test` calls
   * `release` (so a publish stays in flight while the test sends more).
   */
  async function withPublishesHeld(
    userId: string,
    test: (context: { stream: StreamReader; release: () => void }) => Promise<void>,
  ): Promise<void> {
    const stream = await openStream(server.url, { token: await server.token(userId) });
    let release = (): void => undefined;
    publishGate = new Promise((resolve) => (release = resolve));
    try {
      await test({ stream, release });
    } finally {
      release();
      publishGate = undefined;
      stream.close();
    }
  }

  it('answers a repeat with the first answer (status, id) and publishes the event once', async () => {
    const stream = await openStream(server.url, { token: await server.token('idem1') });
    try {
      const key = freshKey();
      const body = { topic: 'user:idem1', type: 'notification', payload: NOTIFICATION };
      const first = await publishWithKey(server, { token, key, body });
      expect(first.status).toBe(202);
      expect(first.headers.get('idempotent-replayed')).toBeNull();
      const { id } = (await first.json()) as { id: string };
      for (let attempt = 0; attempt < 3; attempt++) {
        const again = await publishWithKey(server, { token, key, body });
        expect(again.status).toBe(202);
        expect(again.headers.get('idempotent-replayed')).toBe('true');
        expect(again.headers.get('content-type')).toMatch(/^application\/json/);
        expect(await again.json()).toEqual({ id });
      }
      expect(await settled(server, stream, 'user:idem1')).toEqual([id]);
    } finally {
      stream.close();
    }
  });

  it('replays a critical publish as 201 and stores the event once', async () => {
    const key = freshKey();
    const body = { topic: 'user:idem2', type: 'notification', payload: NOTIFICATION, critical: true };
    const first = await publishWithKey(server, { token, key, body });
    expect(first.status).toBe(201);
    const again = await publishWithKey(server, { token, key, body });
    expect(again.status).toBe(201);
    expect(await again.json()).toEqual(await first.json());
    const stored = await server.app.realtime.internals.store.readAfter({ topics: ['user:idem2'], after: 0, limit: 10 });
    expect(stored).toHaveLength(1);
  });

  it('takes the same JSON with its keys in another order as the same body', async () => {
    const key = freshKey();
    const first = await publishWithKey(server, {
      token,
      key,
      body: '{"topic":"user:idem3","type":"notification","payload":{"title":"Once","level":"info"}}',
    });
    const again = await publishWithKey(server, {
      token,
      key,
      body: '{ "payload": { "level": "info", "title": "Once" }, "type": "notification", "topic": "user:idem3" }',
    });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.json()).toEqual(await first.json());
  });

  it('refuses the key with another body (422 idempotency_key_reused), and the first answer still stands', async () => {
    const key = freshKey();
    const body = { topic: 'user:idem4', type: 'notification', payload: NOTIFICATION };
    const first = (await (await publishWithKey(server, { token, key, body })).json()) as { id: string };
    const other = { ...body, payload: { ...NOTIFICATION, title: 'Twice' } };
    await expectJsonError(await publishWithKey(server, { token, key, body: other }), 422, 'idempotency_key_reused');
    await expectJsonError(
      await publishWithKey(server, { token, key, body: { ...body, topic: 'user:idem5' } }),
      422,
      'idempotency_key_reused',
    );
    expect(await (await publishWithKey(server, { token, key, body })).json()).toEqual(first);
  });

  it.each([[''], ['x'.repeat(129)], ['has space'], ['ümlaut'], ['a/b'], ['a,b']])(
    'refuses the malformed key %j with 400 invalid_request',
    async (key) => {
      const body = { topic: 'user:idem6', type: 'notification', payload: NOTIFICATION };
      await expectJsonError(await publishWithKey(server, { token, key, body }), 400, 'invalid_request');
    },
  );

  it('accepts every allowed character, up to 128 of them', async () => {
    const body = { topic: 'user:idem7', type: 'notification', payload: NOTIFICATION };
    const key = `${'aZ09._:-'.repeat(15)}${randomBytes(4).toString('hex')}`;
    expect(key).toHaveLength(128);
    expect((await publishWithKey(server, { token, key, body })).status).toBe(202);
  });

  it('scopes keys per publisher: another token subject with the same key publishes its own event', async () => {
    const key = freshKey();
    const body = { topic: 'user:idem8', type: 'notification', payload: NOTIFICATION };
    const other = await server.token('other-service', { scope: 'events:publish' });
    const mine = (await (await publishWithKey(server, { token, key, body })).json()) as { id: string };
    const theirs = await publishWithKey(server, { token: other, key, body });
    expect(theirs.status).toBe(202);
    expect(theirs.headers.get('idempotent-replayed')).toBeNull();
    expect(((await theirs.json()) as { id: string }).id).not.toBe(mine.id);
  });

  it('does not remember a failed publish (5xx): the retry with the same key publishes', async () => {
    const key = freshKey();
    const body = { topic: 'user:idem9', type: 'notification', payload: NOTIFICATION };
    failNextPublish = true;
    await expectJsonError(await publishWithKey(server, { token, key, body }), 503, 'bus_unavailable');
    const retry = await publishWithKey(server, { token, key, body });
    expect(retry.status).toBe(202);
    expect(retry.headers.get('idempotent-replayed')).toBeNull();
    // Nor a refused one (4xx): the key is free for a corrected request.
    const badKey = freshKey();
    const bad = { ...body, payload: { title: 'x', level: 'loud' } };
    await expectJsonError(await publishWithKey(server, { token, key: badKey, body: bad }), 400, 'invalid_event');
    expect((await publishWithKey(server, { token, key: badKey, body })).status).toBe(202);
  });

  it('makes duplicates that arrive while the first is in flight wait for its answer: one event', async () => {
    await withPublishesHeld('idem10', async ({ stream, release }) => {
      const key = freshKey();
      const body = { topic: 'user:idem10', type: 'notification', payload: NOTIFICATION };
      const first = publishWithKey(server, { token, key, body });
      // The first holds the key (its publish is gated) before the duplicates arrive.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const duplicates = Array.from({ length: 5 }, () => publishWithKey(server, { token, key, body }));
      await new Promise((resolve) => setTimeout(resolve, 100));
      release();
      const answers = await Promise.all([first, ...duplicates]);
      const bodies = await Promise.all(answers.map((answer) => answer.json()));
      expect(answers.map((answer) => answer.status)).toEqual([202, 202, 202, 202, 202, 202]);
      expect(new Set(bodies.map((answer) => JSON.stringify(answer))).size).toBe(1);
      expect(answers.filter((answer) => answer.headers.get('idempotent-replayed') === 'true')).toHaveLength(5);
      expect(await settled(server, stream, 'user:idem10')).toEqual([(bodies[0] as { id: string }).id]);
    });
  });

  it('keeps the answer for a client that gave up waiting: its retry gets the id of the event that was published', async () => {
    await withPublishesHeld('idem11', async ({ stream, release }) => {
      const key = freshKey();
      const body = { topic: 'user:idem11', type: 'notification', payload: NOTIFICATION };
      const abort = new AbortController();
      const gaveUp = publishWithKey(server, { token, key, body, signal: abort.signal });
      await new Promise((resolve) => setTimeout(resolve, 100));
      abort.abort();
      await expect(gaveUp).rejects.toThrow();
      release();
      const [id] = await settled(server, stream, 'user:idem11');
      expect(id).toBeDefined();
      const retry = await publishWithKey(server, { token, key, body });
      expect(retry.status).toBe(202);
      expect(await retry.json()).toEqual({ id });
      expect(await settled(server, stream, 'user:idem11')).toEqual([id]);
    });
  });

  it('publishes every time without the header, as before', async () => {
    const body = { topic: 'user:idem12', type: 'notification', payload: NOTIFICATION };
    const ids = new Set<string>();
    for (let i = 0; i < 3; i++) {
      ids.add(((await (await publishWithKey(server, { token, body })).json()) as { id: string }).id);
    }
    expect(ids.size).toBe(3);
  });
});
