/**
 * Security regression suite, resource bounds (issue 11, items 10 and 11): the in-process hot log
 * has one byte budget across topics, a publisher can open only so many new topics, users can
 * start only so many generations and tasks, and the job journals expire before critical events.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryEventBus } from '../src/adapters/bus/memory-event-bus.js';
import { parseConfig } from '../../../apps/backend/src/config.js';
import { idFloorAt } from '../src/core/event-id.js';
import { GENERATION_JOURNAL_TOPIC, TASK_JOURNAL_TOPIC } from '../src/core/journal-events.js';
import { PgliteEventStore } from '../src/adapters/store/pglite-event-store.js';
import { startRetentionJob } from '../src/services/store/retention-job.js';
import { expectJsonError } from './helpers/http-assertions.js';
import { ofType, openStream } from './helpers/sse-reader.js';
import { publishRaw, startTestApp, type TestApp } from './helpers/test-app.js';

const KIB = 1024;

const note = (size: number) => ({
  type: 'notification',
  payload: { title: 'x', body: 'y'.repeat(size), level: 'info' },
});

describe('security: one byte budget for the in-process hot log, across topics', () => {
  let bus: MemoryEventBus;
  beforeAll(async () => {
    bus = new MemoryEventBus({ maxEvents: 1_000, maxAgeMs: 3_600_000, maxBytes: 200 * KIB });
    await bus.start({ idFloor: idFloorAt(Date.now()), coveredFrom: 0 });
  });
  afterAll(async () => {
    await bus?.close();
  });

  it('evicts the oldest events of all topics past the budget; their readers get a gap', async () => {
    const ids: number[] = [];
    for (let index = 0; index < 100; index++) {
      const record = await bus.publish({
        topic: `doc:${index}`,
        type: 'notification',
        ts: new Date().toISOString(),
        payload: { title: 't', body: 'z'.repeat(10 * KIB), level: 'info' },
        critical: false,
      });
      ids.push(record.id);
    }
    const kept = await bus.read(
      Array.from({ length: 100 }, (_, index) => `doc:${index}`),
      0,
      1_000,
    );
    // Each topic holds one event, far below its own bound of 1,000: the global budget did this.
    expect(kept.events.length).toBeGreaterThan(5);
    expect(kept.events.length).toBeLessThan(25);
    expect(kept.events.at(-1)?.id).toBe(ids.at(-1));
    expect(kept.events.map((event) => event.id)).toEqual(ids.slice(-kept.events.length));
    const first = await bus.read(['doc:0'], (ids[0] as number) - 1, 10);
    expect(first.events).toEqual([]);
    expect(first.gapTopics).toEqual(['doc:0']);
  });

  it('over HTTP: a resume from an evicted event gets stream.reset {gap}', async () => {
    const server = await startTestApp({ HOT_LOG_MAX_BYTES: String(1024 * KIB) });
    try {
      const first = await server.publish({ topic: 'user:evicted', ...note(8 * KIB) });
      for (let batch = 0; batch < 10; batch++) {
        await Promise.all(
          Array.from({ length: 16 }, (_, index) =>
            server.publish({ topic: `doc:${batch}-${index}`, ...note(8 * KIB) }),
          ),
        );
      }
      const stream = await openStream(server.url, {
        token: await server.token('evicted'),
        lastEventId: String(Number(first.id) - 1),
      });
      try {
        await stream.waitFor((events) => events.some((event) => event.event === 'stream.resumed'));
        expect(ofType(stream.events, 'stream.reset')).toEqual([expect.objectContaining({ reason: 'gap' })]);
        expect(ofType(stream.events, 'stream.resumed')).toEqual([{ replayed: 0, complete: false }]);
      } finally {
        stream.close();
      }
    } finally {
      await server.close();
    }
  });
});

describe('security: a publisher opens only so many new topics per window', () => {
  let server: TestApp;
  beforeAll(async () => {
    server = await startTestApp({ PUBLISH_NEW_TOPICS_MAX: '5', PUBLISH_NEW_TOPICS_WINDOW_MS: '60000' });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers 429 with Retry-After past the budget; topics that exist cost nothing; others are not affected', async () => {
    const greedy = await server.token('greedy', { scope: 'events:publish' });
    for (let index = 0; index < 5; index++) {
      expect((await publishRaw(server, { topic: `fresh:${index}`, ...note(10) }, greedy)).status).toBe(202);
    }
    const refused = await publishRaw(server, { topic: 'fresh:5', ...note(10) }, greedy);
    await expectJsonError(refused, 429, 'rate_limited');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    // Topics already open take any number of publishes.
    for (let round = 0; round < 3; round++) {
      expect((await publishRaw(server, { topic: 'fresh:0', ...note(10) }, greedy)).status).toBe(202);
    }
    const other = await server.token('other-publisher', { scope: 'events:publish' });
    expect((await publishRaw(server, { topic: 'fresh:0', ...note(10) }, other)).status).toBe(202);
    expect((await publishRaw(server, { topic: 'other:1', ...note(10) }, other)).status).toBe(202);
  });

  it('does not hold back service tokens, which publish for many users under their own rate', async () => {
    const service = await server.token('service:notifier', { scope: 'events:publish events:service' });
    for (let index = 0; index < 8; index++) {
      expect((await publishRaw(server, { topic: `user:first-time-${index}`, ...note(10) }, service)).status).toBe(202);
    }
  });
});

describe('security: per-user creation rates of generations and tasks', () => {
  let server: TestApp;
  beforeAll(async () => {
    server = await startTestApp({
      AI_CREATE_RATE_MAX: '3',
      AI_CREATE_RATE_WINDOW_MS: '60000',
      TASK_CREATE_RATE_MAX: '2',
      TASK_CREATE_RATE_WINDOW_MS: '60000',
      AI_MAX_CONCURRENT_PER_USER: '100',
      TASK_MAX_QUEUED_PER_USER: '100',
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  async function create(token: string, path: string, body: unknown): Promise<Response> {
    const response = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (response.status === 202) {
      // Create-and-cancel, as the loop that filled the store did.
      const { generationId, taskId } = (await response.json()) as { generationId?: string; taskId?: string };
      await fetch(`${server.url}${path}/${generationId ?? taskId}/cancel`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
    }
    return response;
  }

  it.each([
    ['generations', '/api/ai/generations', { prompt: 'p'.repeat(1000) }, 3],
    ['tasks', '/api/tasks', { kind: 'demo', input: { stages: 1, stageMs: 10_000 } }, 2],
  ] as const)('%s: past the rate, 429 rate_limited with Retry-After, per user', async (_kind, path, body, max) => {
    const looper = await server.token(`looper-${path}`);
    for (let index = 0; index < max; index++) expect((await create(looper, path, body)).status).toBe(202);
    const refused = await create(looper, path, body);
    const error = await expectJsonError(refused, 429, 'rate_limited');
    expect(error.error.message).toMatch(/per user/);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await create(await server.token(`someone-else-${path}`), path, body)).status).toBe(202);
  });
});

describe('security: the job journals expire before critical events do', () => {
  const stores: PgliteEventStore[] = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
  });

  it('deletes journal entries past JOURNAL_RETENTION_MS while critical events stay for STORE_RETENTION_MS', async () => {
    const config = parseConfig({});
    expect(config.journalRetentionMs).toBeLessThan(config.storeRetentionMs);
    const store = new PgliteEventStore();
    stores.push(store);
    await store.init();
    const now = Date.now();
    const twoDaysAgo = new Date(now - 2 * 86_400_000).toISOString();
    const events = [
      { topic: GENERATION_JOURNAL_TOPIC, type: 'journal.started' },
      { topic: TASK_JOURNAL_TOPIC, type: 'journal.started' },
      { topic: 'user:u1', type: 'ai.generation.completed' },
    ] as const;
    for (const [index, event] of events.entries()) {
      await store.append({
        id: idFloorAt(now - 2 * 86_400_000) + index + 2,
        ...event,
        ts: twoDaysAgo,
        payload: {},
        critical: true,
      });
    }
    const job = startRetentionJob({
      store,
      retentionMs: config.storeRetentionMs,
      shortLived: { topics: [GENERATION_JOURNAL_TOPIC, TASK_JOURNAL_TOPIC], retentionMs: config.journalRetentionMs },
      intervalMs: 3_600_000,
      now: () => now,
    });
    try {
      expect(await job.runOnce()).toBe(2);
    } finally {
      job.stop();
    }
    const left = await store.readAfter({
      topics: [GENERATION_JOURNAL_TOPIC, TASK_JOURNAL_TOPIC, 'user:u1'],
      after: 0,
      limit: 10,
    });
    expect(left.map((event) => event.topic)).toEqual(['user:u1']);
  });

  it('refuses a journal retention shorter than a job may run', () => {
    expect(() => parseConfig({ JOURNAL_RETENTION_MS: '60000', TASK_MAX_DURATION_MS: '1800000' })).toThrow(
      /JOURNAL_RETENTION_MS: must be at least/,
    );
  });
});
