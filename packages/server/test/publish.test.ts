import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgliteEventStore } from '../src/adapters/store/pglite-event-store.js';
import { openStream, published } from './helpers/sse-reader.js';
import { expectJsonError } from './helpers/http-assertions.js';
import { publishRaw, startTestApp, type TestApp } from './helpers/test-app.js';

const ID_PATTERN = /^[0-9A-Za-z._-]{1,64}$/;
const NOTIFICATION = { title: 'Hello', level: 'info' };

/** POST /api/events with a raw body (a string is sent as is, anything else as JSON). */
describe('POST /api/events', () => {
  let server: TestApp;
  let publisher: string;

  beforeAll(async () => {
    server = await startTestApp();
    publisher = await server.token('pub-user', { scope: 'events:publish' });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers 202 {id} for a non-critical event, which is delivered but not stored', async () => {
    const stream = await openStream(server.url, { token: await server.token('p1') });
    try {
      const response = await publishRaw(
        server,
        { topic: 'user:p1', type: 'notification', payload: NOTIFICATION },
        publisher,
      );
      expect(response.status).toBe(202);
      const body = (await response.json()) as { id: string };
      expect(Object.keys(body)).toEqual(['id']);
      expect(body.id).toMatch(ID_PATTERN);
      await stream.waitFor((events) => published(events).some((event) => event.id === body.id));
      const stored = await server.app.realtime.internals.store.readAfter({ topics: ['user:p1'], after: 0, limit: 100 });
      expect(stored.map((event) => String(event.id))).not.toContain(body.id);
    } finally {
      stream.close();
    }
  });

  it('answers 201 {id} for a critical event, which is then in the store', async () => {
    const response = await publishRaw(
      server,
      { topic: 'user:p2', type: 'notification', payload: { title: 'Saved', level: 'success' }, critical: true },
      publisher,
    );
    expect(response.status).toBe(201);
    const { id } = (await response.json()) as { id: string };
    expect(id).toMatch(ID_PATTERN);
    const stored = await server.app.realtime.internals.store.readAfter({ topics: ['user:p2'], after: 0, limit: 100 });
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({
      topic: 'user:p2',
      type: 'notification',
      payload: { title: 'Saved', level: 'success' },
      critical: true,
    });
    expect(String(stored[0]?.id)).toBe(id);
  });

  it('issues strictly increasing ids across publishes', async () => {
    const ids: bigint[] = [];
    for (let i = 0; i < 6; i++) {
      const { status, id } = await server.publish({ topic: `user:order${i % 2}`, critical: i % 3 === 0 });
      expect([201, 202]).toContain(status);
      ids.push(BigInt(id));
    }
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
  });

  it('refuses malformed JSON with 400 invalid_json', async () => {
    await expectJsonError(await publishRaw(server, '{"topic": "user:u1", ', publisher), 400, 'invalid_json');
  });

  it('refuses an unknown type with 400 invalid_event naming the type', async () => {
    const body = await expectJsonError(
      await publishRaw(server, { topic: 'user:u1', type: 'no.such.type', payload: {} }, publisher),
      400,
      'invalid_event',
    );
    expect(body.error.message).toContain('no.such.type');
  });

  it("refuses the job journal's internal types on any topic with 403 forbidden_type", async () => {
    const entry = { jobId: 'gen-x', userId: 'u1', request: { prompt: 'x', maxTokens: 1 } };
    for (const topic of ['user:u1', 'ai-generations']) {
      const body = await expectJsonError(
        await publishRaw(server, { topic, type: 'journal.started', payload: entry }, publisher),
        403,
        'forbidden_type',
      );
      expect(body.error.message).toContain('published by the server only');
    }
  });

  it('refuses a payload failing its schema, naming the problem', async () => {
    const badLevel = await expectJsonError(
      await publishRaw(
        server,
        { topic: 'user:u1', type: 'notification', payload: { title: 'x', level: 'loud' } },
        publisher,
      ),
      400,
      'invalid_event',
    );
    expect(badLevel.error.message).toContain('level');
    const missingTitle = await expectJsonError(
      await publishRaw(server, { topic: 'user:u1', type: 'notification', payload: { level: 'info' } }, publisher),
      400,
      'invalid_event',
    );
    expect(missingTitle.error.message).toContain('title');
    const extraField = await expectJsonError(
      await publishRaw(
        server,
        { topic: 'user:u1', type: 'notification', payload: { title: 'x', level: 'info', colour: 'red' } },
        publisher,
      ),
      400,
      'invalid_event',
    );
    expect(extraField.error.message).toContain('colour');
  });

  it.each([['has space'], [''], ['a,b'], ['user:tab\there'], ['x'.repeat(301)]])(
    'refuses the bad topic %j with 400 invalid_event',
    async (topic) => {
      await expectJsonError(
        await publishRaw(server, { topic, type: 'notification', payload: NOTIFICATION }, publisher),
        400,
        'invalid_event',
      );
    },
  );

  it.each([
    ['a missing payload', { topic: 'user:u1', type: 'notification' }],
    ['a missing topic', { type: 'notification', payload: NOTIFICATION }],
    ['a missing type', { topic: 'user:u1', payload: NOTIFICATION }],
    ['a non-boolean critical', { topic: 'user:u1', type: 'notification', payload: NOTIFICATION, critical: 'yes' }],
    ['an unknown field', { topic: 'user:u1', type: 'notification', payload: NOTIFICATION, priority: 1 }],
    ['an array body', [1, 2]],
    ['an empty body', ''],
  ])('refuses %s with 400 invalid_event', async (_name, body) => {
    await expectJsonError(await publishRaw(server, body, publisher), 400, 'invalid_event');
  });

  it.each([
    ['a payload nested 20,000 deep', `{"taskId":"t","result":${'['.repeat(20_000)}${']'.repeat(20_000)}}`],
    ['a payload nested past the limit of 64', `{"taskId":"t","result":${'{"a":'.repeat(64)}1${'}'.repeat(64)}}`],
    ['a number JSON cannot represent (1e400)', '{"taskId":"t","result":{"huge":1e400}}'],
    ['a negative one (-1e400)', '{"taskId":"t","result":[-1e400]}'],
  ])('refuses %s with 400 invalid_event, publishing nothing', async (_name, payload) => {
    const stream = await openStream(server.url, { token: await server.token('depth') });
    try {
      const body = `{"topic":"user:depth","type":"task.completed","payload":${payload}}`;
      const error = await expectJsonError(await publishRaw(server, body, publisher), 400, 'invalid_event');
      expect(error.error.message).toMatch(/deeper than 64|JSON cannot represent/);
      const fine = await server.publish({ topic: 'user:depth' });
      await stream.waitFor((events) => published(events).some((event) => event.id === fine.id));
      expect(published(stream.events).map((event) => event.id)).toEqual([fine.id]);
    } finally {
      stream.close();
    }
  });

  it('carries lone surrogates and deep-but-allowed payloads unchanged, live and from the store', async () => {
    const payload = {
      taskId: 't',
      result: { lone: '\ud800 \udfff', deep: JSON.parse(`${'['.repeat(60)}${']'.repeat(60)}`) },
    };
    const stream = await openStream(server.url, { token: await server.token('odd') });
    try {
      // task.completed is server-emitted (403 forbidden_type over HTTP): published in-process, as
      // the task runner does, through the same event path.
      const record = await server.app.realtime.internals.publisher.publish({
        topic: 'user:odd',
        type: 'task.completed',
        payload,
        critical: true,
      });
      const id = String(record.id);
      await stream.waitFor((events) => published(events).some((event) => event.id === id));
      const [live] = published(stream.events);
      expect((JSON.parse(live?.data ?? '{}') as { payload: unknown }).payload).toEqual(payload);
      const [stored] = await server.app.realtime.internals.store.readAfter({
        topics: ['user:odd'],
        after: 0,
        limit: 1,
      });
      expect(stored?.payload).toEqual(payload);
    } finally {
      stream.close();
    }
  });

  it('refuses a publish without a token (401) and without the events:publish scope (403)', async () => {
    const event = { topic: 'user:u1', type: 'notification', payload: NOTIFICATION };
    await expectJsonError(await publishRaw(server, event), 401, 'unauthorized');
    await expectJsonError(await publishRaw(server, event, await server.token('reader')), 403, 'forbidden');
    await expectJsonError(
      await publishRaw(server, event, await server.token('reader', { scope: 'events:read publish' })),
      403,
      'forbidden',
    );
    // The scope may be one of several.
    const multi = await publishRaw(server, event, await server.token('writer', { scope: 'profile events:publish' }));
    expect(multi.status).toBe(202);
  });

  it('refuses a body over 64 KiB with 413 payload_too_large, but not one just under', async () => {
    const big = JSON.stringify({
      topic: 'user:u1',
      type: 'notification',
      payload: { title: 'big', level: 'info', body: 'x'.repeat(65 * 1024) },
    });
    await expectJsonError(await publishRaw(server, big, publisher), 413, 'payload_too_large');
    // Just under 64 KiB reaches validation (the payload's body is over its own 20 000 limit).
    const underLimit = JSON.stringify({
      topic: 'user:u1',
      type: 'notification',
      payload: { title: 'big', level: 'info', body: 'x'.repeat(63 * 1024) },
    });
    expect(Buffer.byteLength(underLimit)).toBeLessThan(64 * 1024);
    await expectJsonError(await publishRaw(server, underLimit, publisher), 400, 'invalid_event');
  });

  it('answers unknown routes with 404 not_found JSON', async () => {
    await expectJsonError(await fetch(`${server.url}/api/no-such-route`), 404, 'not_found');
    await expectJsonError(await fetch(`${server.url}/api/events/x`, { method: 'POST' }), 404, 'not_found');
    await expectJsonError(await fetch(`${server.url}/api/events`, { method: 'DELETE' }), 404, 'not_found');
  });
});

describe('POST /api/events rate limit', () => {
  let server: TestApp;

  beforeAll(async () => {
    // A long window so a slow machine cannot see it reset in the middle of the test.
    server = await startTestApp({
      PUBLISH_RATE_MAX: '3',
      PUBLISH_RATE_MAX_SERVICE: '6',
      PUBLISH_TOPIC_RATE_MAX: '5',
      PUBLISH_RATE_WINDOW_MS: '60000',
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers 429 rate_limited with Retry-After past PUBLISH_RATE_MAX, per user', async () => {
    const token = await server.token('busy', { scope: 'events:publish' });
    const event = { topic: 'user:busy', type: 'notification', payload: NOTIFICATION };
    for (let i = 0; i < 3; i++) expect((await publishRaw(server, event, token)).status).toBe(202);
    const limited = await publishRaw(server, event, token);
    const retryAfter = limited.headers.get('retry-after');
    await expectJsonError(limited, 429, 'rate_limited');
    expect(Number(retryAfter)).toBeGreaterThan(0);
    expect(Number(retryAfter)).toBeLessThanOrEqual(60);

    // Another user has their own quota.
    const other = await server.token('calm', { scope: 'events:publish' });
    expect((await publishRaw(server, event, other)).status).toBe(202);
    // Refused requests do not spend anyone's quota: a forged token is a 401, not a 429.
    expect((await publishRaw(server, event, 'forged')).status).toBe(401);
  });

  it('gives a service token (scope events:service) its own limit, PUBLISH_RATE_MAX_SERVICE', async () => {
    const service = await server.token('backend', { scope: 'events:publish events:service' });
    const event = (index: number) => ({ topic: `user:fan${index}`, type: 'notification', payload: NOTIFICATION });
    for (let i = 0; i < 6; i++) expect((await publishRaw(server, event(i), service)).status).toBe(202);
    const limited = await publishRaw(server, event(6), service);
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
    const body = await expectJsonError(limited, 429, 'rate_limited');
    expect(body.error.message).toContain('6');
  });

  it('limits each topic to PUBLISH_TOPIC_RATE_MAX, whoever publishes, and leaves other topics alone', async () => {
    const publishers = await Promise.all(
      ['svc-a', 'svc-b', 'svc-c'].map((name) => server.token(name, { scope: 'events:publish events:service' })),
    );
    const event = (topic: string) => ({ topic, type: 'notification', payload: NOTIFICATION });
    for (let i = 0; i < 5; i++) {
      expect((await publishRaw(server, event('user:victim'), publishers[i % 3])).status).toBe(202);
    }
    const limited = await publishRaw(server, event('user:victim'), publishers[2]);
    const retryAfter = Number(limited.headers.get('retry-after'));
    const body = await expectJsonError(limited, 429, 'rate_limited');
    expect(body.error.message).toContain('user:victim');
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect((await publishRaw(server, event('user:bystander'), publishers[2])).status).toBe(202);
  });
});

describe('POST /api/events with the store down', () => {
  let server: TestApp;
  let store: PgliteEventStore;

  beforeAll(async () => {
    // buildApp awaits store.init() and refuses to start on a dead store (a PostgresEventStore
    // pointed at a closed port fails there), so the real PGlite adapter is started healthy and
    // then closed: from then on health() reports `down` and every operation rejects, as a store
    // that went away under a running server does.
    store = new PgliteEventStore();
    server = await startTestApp({}, { store });
    await store.close();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers a critical publish with 503 store_unavailable', async () => {
    const token = await server.token('critical', { scope: 'events:publish' });
    const response = await publishRaw(
      server,
      { topic: 'user:critical', type: 'notification', payload: NOTIFICATION, critical: true },
      token,
    );
    expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
    await expectJsonError(response, 503, 'store_unavailable');
  });

  it('still accepts a non-critical publish (202) and delivers it', async () => {
    const stream = await openStream(server.url, { token: await server.token('live') });
    try {
      const { status, id } = await server.publish({ topic: 'user:live' });
      expect(status).toBe(202);
      await stream.waitFor((events) => published(events).some((event) => event.id === id));
    } finally {
      stream.close();
    }
  });
});
