/**
 * Security regression suite, publishing (issue 11, item 5): server-emitted types are the server's
 * alone, jobs hear cancels only from the server, and a token can be bounded to some topics.
 */
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GenerationService } from '../src/services/generations/generation-service.js';
import { OfflineProvider } from '../src/adapters/ai/offline-provider.js';
import { Metrics } from '../src/adapters/observability/metrics.js';
import { demoTask } from '../../../apps/backend/src/task-kinds/demo-task.js';
import { TaskCatalog } from '../src/services/tasks/task-catalog.js';
import { TaskRunner } from '../src/services/tasks/task-runner.js';
import { expectJsonError } from './helpers/http-assertions.js';
import { openSharedEventLog, type SharedEventLog } from './helpers/shared-event-log.js';
import { publishRaw, startTestApp, TEST_JWT_SECRET, type TestApp } from './helpers/test-app.js';

/** A well-formed payload of every server-emitted type, for a job of `id`. */
function forgedEvents(id: string): { type: string; payload: unknown }[] {
  return [
    { type: 'ai.generation.started', payload: { generationId: id } },
    { type: 'ai.generation.delta', payload: { generationId: id, seq: 0, text: 'forged' } },
    { type: 'ai.generation.snapshot', payload: { generationId: id, seq: 0, text: 'forged' } },
    { type: 'ai.generation.completed', payload: { generationId: id, text: 'FORGED TEXT' } },
    { type: 'ai.generation.failed', payload: { generationId: id, error: 'forged' } },
    { type: 'ai.generation.cancelled', payload: { generationId: id } },
    { type: 'task.progress', payload: { taskId: id, stage: 'x', stageIndex: 0, stageCount: 1, percent: 100 } },
    { type: 'task.completed', payload: { taskId: id, result: 'FORGED RESULT' } },
    { type: 'task.failed', payload: { taskId: id, error: 'forged' } },
    { type: 'task.cancelled', payload: { taskId: id } },
  ];
}

async function api(server: TestApp, token: string, route: string, body?: unknown): Promise<Record<string, unknown>> {
  const [method, path] = route.split(' ') as [string, string];
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const answer = (await response.json()) as Record<string, unknown>;
  expect(response.status, JSON.stringify(answer)).toBeLessThan(300);
  return answer;
}

async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('security: server-emitted types over POST /api/events', () => {
  let server: TestApp;
  let attacker: string;

  beforeAll(async () => {
    server = await startTestApp({ AI_OFFLINE_TOKENS_PER_SECOND: '20' });
    attacker = await server.token('attacker', { scope: 'events:publish' });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers 403 forbidden_type for every ai.generation.* and task.* type, on any topic, critical or not', async () => {
    for (const topic of ['user:victim', 'user:attacker', 'doc:1']) {
      for (const event of forgedEvents('gen-x')) {
        for (const critical of [false, true]) {
          const response = await publishRaw(server, { topic, ...event, critical }, attacker);
          await expectJsonError(response, 403, 'forbidden_type');
        }
      }
    }
    const stored = await server.app.realtime.internals.store.readAfter({
      topics: ['user:victim'],
      after: 0,
      limit: 100,
    });
    expect(stored).toEqual([]);
  });

  it('refuses the server’s internal journal types too, and custom-looking types under the server prefixes', async () => {
    for (const event of [
      { topic: 'user:victim', type: 'journal.started', payload: { jobId: 'j', userId: 'victim', request: {} } },
      { topic: 'user:victim', type: 'journal.cancel', payload: { jobId: 'j', userId: 'victim' } },
      { topic: 'user:victim', type: 'task.something-new', payload: {} },
    ]) {
      await expectJsonError(await publishRaw(server, event, attacker), 403, 'forbidden_type');
    }
  });

  it('a forged cancelled does not stop the victim’s generation, and a forged completed is never its outcome', async () => {
    const victim = await server.token('victim');
    const { generationId } = (await api(server, victim, 'POST /api/ai/generations', {
      prompt: 'The lighthouse keeper',
      maxTokens: 12,
    })) as { generationId: string };
    for (const event of forgedEvents(generationId).filter((forged) => forged.type.startsWith('ai.'))) {
      const response = await publishRaw(server, { topic: 'user:victim', ...event, critical: true }, attacker);
      await expectJsonError(response, 403, 'forbidden_type');
    }
    await until(
      async () => (await api(server, victim, `GET /api/ai/generations/${generationId}`))['status'] !== 'running',
      'the generation to end',
    );
    const view = await api(server, victim, `GET /api/ai/generations/${generationId}`);
    expect(view['status']).toBe('completed');
    expect(view['text']).not.toContain('FORGED');
    const stored = await server.app.realtime.internals.store.readAfter({
      topics: ['user:victim'],
      after: 0,
      limit: 1_000,
    });
    expect(JSON.stringify(stored)).not.toContain('FORGED');
  });

  it('a forged task.cancelled does not stop the victim’s task', async () => {
    const victim = await server.token('task-victim');
    const { taskId } = (await api(server, victim, 'POST /api/tasks', {
      kind: 'demo',
      input: { stages: 2, stageMs: 300 },
    })) as { taskId: string };
    const forged = { topic: 'user:task-victim', type: 'task.cancelled', payload: { taskId }, critical: true };
    await expectJsonError(await publishRaw(server, forged, attacker), 403, 'forbidden_type');
    await until(
      async () =>
        !['queued', 'running'].includes(String((await api(server, victim, `GET /api/tasks/${taskId}`))['status'])),
      'the task to end',
    );
    expect((await api(server, victim, `GET /api/tasks/${taskId}`))['status']).toBe('completed');
  });
});

/**
 * Two instances on one bus and one store (as behind a load balancer): even an `*.cancelled` that
 * reaches the bus on the victim's own topic, by any path, is not what stops a job. Only the
 * server's internal cancel request is.
 */
describe('security: jobs hear cancels only from the server', () => {
  let log: SharedEventLog;
  const stops: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    log = await openSharedEventLog();
  });
  afterEach(async () => {
    await Promise.allSettled(stops.splice(0).map((stop) => stop()));
  });
  afterAll(async () => {
    await log?.close();
  });

  const base = () => ({
    publisher: log.publisher,
    bus: log.bus,
    store: log.store,
    metrics: new Metrics({ defaultMetrics: false }),
    logger: log.logger,
    singleInstance: false,
  });

  function generations(instanceId: string): GenerationService {
    const service = new GenerationService({
      ...base(),
      provider: new OfflineProvider({ tokensPerSecond: 40, seed: 1 }),
      instanceId,
      flushMs: 20,
      maxConcurrentPerUser: 3,
      defaultMaxTokens: 30,
      maxDurationMs: 30_000,
    });
    stops.push(() => service.stop());
    return service;
  }

  function tasks(instanceId: string): TaskRunner {
    const runner = new TaskRunner({
      ...base(),
      catalog: new TaskCatalog([demoTask]),
      provider: new OfflineProvider({ tokensPerSecond: 40, seed: 1 }),
      instanceId,
      maxConcurrentPerUser: 2,
      maxQueuedPerUser: 2,
      progressIntervalMs: 50,
      maxDurationMs: 30_000,
    });
    stops.push(() => runner.stop());
    return runner;
  }

  it('a generation runs on through an ai.generation.cancelled on its topic; a cancel through the server stops it', async () => {
    const a = generations('a');
    const b = generations('b');
    await Promise.all([a.start(), b.start()]);
    const forged = await a.create('g1', { messages: [{ role: 'user', content: 'The harbour at dawn' }] });
    await log.publisher.publish({
      topic: 'user:g1',
      type: 'ai.generation.cancelled',
      payload: { generationId: forged },
    });
    await until(async () => (await a.get('g1', forged)).status !== 'running', 'the generation to end');
    expect((await a.get('g1', forged)).status).toBe('completed');

    const real = await a.create('g1', { messages: [{ role: 'user', content: 'The harbour at dusk' }] });
    await b.cancel('g1', real);
    await until(async () => (await a.get('g1', real)).status === 'cancelled', 'the cancel to reach instance a');
  });

  it('a task runs on through a task.cancelled on its topic; a cancel through the server stops it', async () => {
    const a = tasks('ta');
    const b = tasks('tb');
    await Promise.all([a.start(), b.start()]);
    const forged = await a.create('t1', 'demo', { stages: 2, stageMs: 300 });
    await log.publisher.publish({ topic: 'user:t1', type: 'task.cancelled', payload: { taskId: forged } });
    await until(async () => !['queued', 'running'].includes((await a.get('t1', forged)).status), 'the task to end');
    expect((await a.get('t1', forged)).status).toBe('completed');

    const real = await a.create('t1', 'demo', { stages: 3, stageMs: 2_000 });
    await b.cancel('t1', real);
    await until(async () => (await a.get('t1', real)).status === 'cancelled', 'the cancel to reach instance ta');
  });
});

describe('security: the publish_topics claim bounds where a token publishes', () => {
  let server: TestApp;

  beforeAll(async () => {
    server = await startTestApp();
  });
  afterAll(async () => {
    await server?.close();
  });

  const notification = { type: 'notification', payload: { title: 'Hi', level: 'info' } };

  it('publishes only to topics its patterns match (prefix `*`, `{sub}`)', async () => {
    const token = await server.token('svc|1', { scope: 'events:publish', publishTopics: ['doc:*', 'user:{sub}'] });
    for (const topic of ['doc:42', 'doc:a:b', 'user:svc|1']) {
      expect((await publishRaw(server, { topic, ...notification }, token)).status, topic).toBe(202);
    }
    for (const topic of ['user:victim', 'broadcast', 'docs:1', 'user:svc|10']) {
      await expectJsonError(await publishRaw(server, { topic, ...notification }, token), 403, 'forbidden_topic');
    }
  });

  it('a `*` pattern still never reaches server-internal topics; no claim keeps today’s behaviour', async () => {
    const everywhere = await server.token('svc2', { scope: 'events:publish', publishTopics: ['*'] });
    expect((await publishRaw(server, { topic: 'anything', ...notification }, everywhere)).status).toBe(202);
    await expectJsonError(await publishRaw(server, { topic: 'tasks', ...notification }, everywhere), 403, 'forbidden');
    const unbounded = await server.token('svc3', { scope: 'events:publish' });
    expect((await publishRaw(server, { topic: 'user:anyone', ...notification }, unbounded)).status).toBe(202);
    const nowhere = await server.token('svc4', { scope: 'events:publish', publishTopics: [] });
    await expectJsonError(
      await publishRaw(server, { topic: 'user:svc4', ...notification }, nowhere),
      403,
      'forbidden_topic',
    );
  });

  it('refuses a token whose claim is malformed (401), rather than guessing what it meant', async () => {
    for (const claim of ['doc:*', [1], ['doc:*:x*'], ['a*b'], ['doc 1'], ['doc:1,doc:2'], ['']]) {
      const token = await new SignJWT({ scope: 'events:publish', publish_topics: claim })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('svc5')
        .setExpirationTime('1h')
        .sign(new TextEncoder().encode(TEST_JWT_SECRET));
      const body = await expectJsonError(
        await publishRaw(server, { topic: 'doc:1', ...notification }, token),
        401,
        'unauthorized',
      );
      expect(body.error.message, JSON.stringify(claim)).toMatch(/publish_topics/);
    }
  });
});
