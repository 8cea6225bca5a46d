import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDevToken } from '../src/adapters/auth/dev-token.js';
import { callAs, pollUntil } from './helpers/api-call.js';
import { createScratchDatabase, type ScratchDatabase } from './helpers/scratch-database.js';
import { startServerProcess, type ServerProcess } from './helpers/server-process.js';
import { requireService, TEST_DATABASE_URL, TEST_REDIS_URL } from './helpers/services.js';
import { ofType, openStream } from './helpers/sse-reader.js';
import { TEST_JWT_SECRET } from './helpers/test-app.js';

const available =
  (await requireService('Redis', TEST_REDIS_URL)) && (await requireService('PostgreSQL', TEST_DATABASE_URL));

interface Delta {
  generationId: string;
  seq: number;
  text: string;
}

const call = callAs;

/** Payloads of the published events of `type` a reader got. */
function payloads<T>(events: Parameters<typeof ofType>[0], type: string): T[] {
  return ofType<{ payload: T }>(events, type).map((envelope) => envelope.payload);
}

const until = (condition: () => Promise<boolean>, what: string) => pollUntil(condition, what, 30_000);

/** Generations on two real instances sharing Redis and PostgreSQL, each with its own INSTANCE_ID. */
describe.skipIf(!available)('AI generations on two real instances (Redis + PostgreSQL)', () => {
  let database: ScratchDatabase;
  let env: Record<string, string>;
  const instances: { a?: ServerProcess; b?: ServerProcess } = {};

  beforeAll(async () => {
    database = await createScratchDatabase();
    env = {
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: `aimi${randomBytes(4).toString('hex')}`,
      DATABASE_URL: database.url,
      AI_MAX_CONCURRENT_PER_USER: '2',
      AI_OFFLINE_TOKENS_PER_SECOND: '8',
      SHUTDOWN_DRAIN_MS: '50',
    };
    [instances.a, instances.b] = await Promise.all([
      startServerProcess({ ...env, INSTANCE_ID: 'ai-a' }),
      startServerProcess({ ...env, INSTANCE_ID: 'ai-b' }),
    ]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([instances.a?.stop('SIGTERM'), instances.b?.stop('SIGTERM')]);
    await database?.drop();
  });

  function both(): [ServerProcess, ServerProcess] {
    const { a, b } = instances;
    if (!a || !b) throw new Error('instances missing');
    return [a, b];
  }

  it('holds the per-user generation limit across the cluster, and frees a slot when one ends', async () => {
    const [a, b] = both();
    const user = 'limited';
    const start = (url: string) => call(url, user, 'POST /api/ai/generations', { prompt: 'Slowly', maxTokens: 400 });
    const first = await start(a.url);
    const second = await start(b.url);
    expect([first.status, second.status]).toEqual([202, 202]);
    // Two run, one on each instance: a third is refused on either.
    const third = await start(a.url);
    expect(third.status).toBe(429);
    expect(third.body).toMatchObject({ error: { code: 'rate_limited' } });
    expect((await start(b.url)).status).toBe(429);

    // A cancel (landing on the other instance) ends one: its slot is free cluster-wide.
    const firstId = first.body['generationId'] as string;
    expect((await call(b.url, user, `POST /api/ai/generations/${firstId}/cancel`)).status).toBe(202);
    await until(
      async () => (await call(a.url, user, `GET /api/ai/generations/${firstId}`)).body['status'] === 'cancelled',
      'the cancel',
    );
    let fourth = await start(b.url);
    // The slot is released once the owning instance has settled the generation.
    for (let attempt = 0; fourth.status === 429 && attempt < 40; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      fourth = await start(b.url);
    }
    expect(fourth.status).toBe(202);
    for (const id of [second.body['generationId'], fourth.body['generationId']]) {
      await call(a.url, user, `POST /api/ai/generations/${String(id)}/cancel`);
    }
  }, 60_000);

  it('an instance restarted under the same INSTANCE_ID continues what it handed over; a reader elsewhere sees one generation', async () => {
    const [a, b] = both();
    const user = 'handover';
    const token = await signDevToken(TEST_JWT_SECRET, { userId: user, expiresIn: 3600 });
    const reader = await openStream(b.url, { token });
    await reader.waitFor((events) => events.some((event) => event.event === 'connection.established'));
    const started = await call(a.url, user, 'POST /api/ai/generations', { prompt: 'A handover story', maxTokens: 40 });
    expect(started.status).toBe(202);
    const id = started.body['generationId'] as string;
    await reader.waitFor((events) => payloads<Delta>(events, 'ai.generation.delta').length >= 3);

    // A rolling restart of A: SIGTERM, then the same INSTANCE_ID again.
    await a.stop('SIGTERM');
    instances.a = undefined;
    instances.a = await startServerProcess({ ...env, INSTANCE_ID: 'ai-a' });

    await reader.waitFor((events) => ofType(events, 'ai.generation.completed').length > 0, 30_000);
    reader.close();
    const deltas = payloads<Delta>(reader.events, 'ai.generation.delta').filter((delta) => delta.generationId === id);
    const snapshots = payloads<{ generationId: string; seq: number; text: string }>(
      reader.events,
      'ai.generation.snapshot',
    );
    const [completed] = payloads<{ generationId: string; text: string }>(reader.events, 'ai.generation.completed');
    // Every delta exactly once, seq 0..n across the two processes, adding up to the final text.
    expect(deltas.map((delta) => delta.seq)).toEqual(deltas.map((_, index) => index));
    expect(deltas.map((delta) => delta.text).join('')).toBe(completed?.text);
    // The hand-over checkpoint went by live too: the text up to its seq.
    expect(snapshots).toHaveLength(1);
    const [checkpoint] = snapshots;
    expect(
      deltas
        .slice(0, (checkpoint?.seq ?? -1) + 1)
        .map((delta) => delta.text)
        .join(''),
    ).toBe(checkpoint?.text);
    expect(deltas.length).toBeGreaterThan((checkpoint?.seq ?? 0) + 1);
    expect(ofType(reader.events, 'ai.generation.failed')).toEqual([]);
    expect((await call(b.url, user, `GET /api/ai/generations/${id}`)).body).toMatchObject({
      status: 'completed',
      text: completed?.text,
    });
  }, 90_000);
  it('a chat turn started on one instance is listed, resumed and cancelled on the other, and recorded as cancelled', async () => {
    const [a, b] = both();
    const user = 'chat-cluster';
    const started = await call(a.url, user, 'POST /api/ai/generations', {
      messages: [{ role: 'user', content: 'A slow answer' }],
      maxTokens: 400,
      conversationId: 'cluster-chat',
    });
    expect(started.status).toBe(202);
    const generationId = started.body['generationId'] as string;

    const listed = await call(b.url, user, 'GET /api/ai/conversations');
    expect(listed.body['conversations']).toEqual([
      expect.objectContaining({ conversationId: 'cluster-chat', turnCount: 1, runningGenerationId: generationId }),
    ]);
    const runningOnB = await call(b.url, user, 'GET /api/ai/generations?status=running');
    expect(runningOnB.body['generations']).toEqual([
      expect.objectContaining({ generationId, status: 'running', conversationId: 'cluster-chat' }),
    ]);
    expect((await call(b.url, 'someone-else', 'GET /api/ai/conversations/cluster-chat')).status).toBe(404);

    // Cancelled on B, the instance not running it: the outcome B publishes settles the turn.
    expect((await call(b.url, user, `POST /api/ai/generations/${generationId}/cancel`)).status).toBe(202);
    let turns: Record<string, unknown>[] = [];
    await until(async () => {
      turns = (await call(a.url, user, 'GET /api/ai/conversations/cluster-chat')).body['turns'] as Record<
        string,
        unknown
      >[];
      return turns[0]?.['status'] === 'cancelled';
    }, 'the turn recorded as cancelled');
    const view = await call(a.url, user, `GET /api/ai/generations/${generationId}`);
    expect(view.body['status']).toBe('cancelled');
    expect(turns[0]).toMatchObject({ generationId, prompt: 'A slow answer', status: 'cancelled' });
    expect((await call(a.url, user, 'GET /api/ai/generations?status=running')).body).toEqual({ generations: [] });
  }, 60_000);
});
