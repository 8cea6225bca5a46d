import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSharedEventLog, type SharedEventLog } from '../../../test/helpers/shared-event-log.js';
import { z } from 'zod';
import { OfflineProvider } from '../../adapters/ai/offline-provider.js';
import type { MemoryEventBus } from '../../adapters/bus/memory-event-bus.js';
import type { EventRecord } from '../../core/event-record.js';
import type { EventPublisher } from '../events/event-publisher.js';
import { Metrics } from '../../adapters/observability/metrics.js';
import type { PgliteEventStore } from '../../adapters/store/pglite-event-store.js';
import { demoTask } from '../../../../../apps/backend/src/task-kinds/demo-task.js';
import { TaskCatalog } from './task-catalog.js';
import { instanceTagOf, newTaskId } from '../../core/job-id.js';
import { defineTaskKind, TaskError } from './task-kind.js';
import { TASK_JOURNAL_TOPIC } from '../../core/journal-events.js';
import { journalEntry } from './task-log.js';
import { INTERNAL_ERROR, RESTART_ERROR, SHUTDOWN_ERROR, TaskRunner, type TaskRunnerOptions } from './task-runner.js';

/** Polls an async condition every 10 ms for up to 10 s. */
async function until(condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Kinds that misbehave, for the runner's sake. */
const stubborn = defineTaskKind<Record<string, never>>({
  name: 'stubborn',
  description: 'ignores its abort signal and never ends',
  input: z.strictObject({}),
  stages: ['Forever'],
  run: ({ progress }) => {
    progress(0, 0.5, 'half way, for ever');
    return new Promise(() => undefined);
  },
});
const throwing = defineTaskKind<{ safe: boolean }>({
  name: 'throwing',
  description: 'throws in its second stage',
  input: z.strictObject({ safe: z.boolean() }),
  stages: ['One', 'Two'],
  async run({ input, progress }) {
    progress(1, 0.25);
    throw input.safe ? new TaskError('the draft is empty') : new TypeError('secret internals');
  },
});

/** Returns a result nested `depth` levels deep: more than any event may carry. */
const deep = defineTaskKind<{ depth: number }>({
  name: 'deep',
  description: 'returns a deeply nested result',
  input: z.strictObject({ depth: z.number().int().min(1) }),
  stages: ['Nest'],
  async run({ input }) {
    let result: unknown = {};
    for (let level = 0; level < input.depth; level++) result = { nested: result };
    return result;
  },
});

/** Stages a `stagewise` task began, as `<taskId>:<stage>`: which stages ran, and how often. */
const stagesBegun: string[] = [];
const stagewise = defineTaskKind<{ stageMs: number }>({
  name: 'stagewise',
  description: 'three timed stages that record their output and skip the finished ones',
  input: z.strictObject({ stageMs: z.number().int().min(0) }),
  stages: ['One', 'Two', 'Three'],
  async run({ taskId, input, signal, progress, finishedStages, stageFinished }) {
    for (let stage = finishedStages.length; stage < 3; stage++) {
      stagesBegun.push(`${taskId}:${stage}`);
      for (let tick = 1; tick <= 4; tick++) {
        await new Promise((resolve) => setTimeout(resolve, input.stageMs / 4));
        signal.throwIfAborted();
        progress(stage, tick / 4);
      }
      stageFinished(stage, `output of ${stage}`);
    }
    return { outputs: [...finishedStages, 'fresh'] };
  },
});

/**
 * Two instances in one process: two runners on one bus and one store, as behind a load balancer
 * with Redis and PostgreSQL (`singleInstance: false`).
 */
describe('TaskRunner across instances', () => {
  let bus: MemoryEventBus;
  let store: PgliteEventStore;
  let log: SharedEventLog;
  let runners: TaskRunner[];
  let publisher: EventPublisher;
  const provider = new OfflineProvider({ tokensPerSecond: 1_000, seed: 1 });

  beforeEach(async () => {
    log = await openSharedEventLog();
    ({ bus, store, publisher } = log);
    runners = [];
  });
  afterEach(async () => {
    await Promise.allSettled(runners.map((runner) => runner.stop()));
    await log.close();
  });

  function instance(instanceId: string, options: Partial<TaskRunnerOptions> = {}) {
    const runner = new TaskRunner({
      catalog: new TaskCatalog([demoTask, stubborn, throwing, stagewise, deep]),
      provider,
      publisher,
      bus,
      store,
      metrics: new Metrics({ defaultMetrics: false }),
      logger: log.logger,
      instanceId,
      maxConcurrentPerUser: 2,
      maxQueuedPerUser: 5,
      progressIntervalMs: 50,
      maxDurationMs: 30_000,
      singleInstance: false,
      ...options,
    });
    runners.push(runner);
    return runner;
  }

  const stored = (topic = 'user:u1') => store.readAfter({ topics: [topic], after: 0, limit: 10_000 });
  const hot = async (topic = 'user:u1') => (await bus.read([topic], 0, 10_000)).events;
  const outcomes = (events: EventRecord[], id: string) =>
    events.filter((event) => event.type !== 'task.progress' && (event.payload as { taskId: string }).taskId === id);

  it('another instance reads a running task’s latest progress, then its outcome', async () => {
    const a = instance('a');
    const b = instance('b');
    const id = await a.create('u1', 'demo', { stages: 2, stageMs: 400 });
    let seen = 0;
    await until(async () => {
      const view = await b.get('u1', id);
      if (view.status === 'completed') return true;
      expect(view).toMatchObject({ taskId: id, kind: 'demo', status: 'running', stageCount: 2 });
      expect(view.percent).toBeGreaterThanOrEqual(seen);
      seen = view.percent;
      return false;
    });
    expect(seen).toBeGreaterThan(0);
    expect(await b.get('u1', id)).toEqual({
      taskId: id,
      kind: 'demo',
      status: 'completed',
      stage: 'Stage 2',
      stageIndex: 1,
      stageCount: 2,
      percent: 100,
      message: 'Stage 2 of 2',
      result: { stages: 2 },
    });
    expect(await b.get('u1', id)).toEqual(await a.get('u1', id));
    await expect(b.get('u2', id)).rejects.toMatchObject({ code: 'not_found' });
    await expect(b.get('u1', 'task-nope')).rejects.toMatchObject({ code: 'not_found' });
    // Stage starts are stored; the fine-grained progress stays in the hot log only.
    const storedProgress = (await stored()).filter((event) => event.type === 'task.progress');
    expect(storedProgress.map((event) => (event.payload as { stage: string }).stage)).toEqual(['Stage 1', 'Stage 2']);
  });

  it('a client that received the outcome finds it on every instance at once, before the store has its id', async () => {
    const a = instance('a');
    const b = instance('b');
    const seen: Promise<[string, string]>[] = [];
    const unsubscribe = await bus.subscribe('user:u1', (event) => {
      if (event.type !== 'task.completed') return;
      const { taskId } = event.payload as { taskId: string };
      // Asked the moment the outcome is delivered, as a client would right after receiving it.
      seen.push(Promise.all([a.get('u1', taskId), b.get('u1', taskId)]).then(([onA, onB]) => [onA.status, onB.status]));
    });
    try {
      await a.create('u1', 'demo', { stages: 1, stageMs: 200 });
      // Its outcome is then slow to be stored with its id.
      log.setLateWriteDelay(500);
      await until(async () => seen.length === 1);
      expect(await seen[0]).toEqual(['completed', 'completed']);
    } finally {
      await unsubscribe();
    }
  });

  it('fails a task whose result nests too deep with a clear error, leaving nothing of the result behind', async () => {
    const a = instance('a');
    const b = instance('b');
    const id = await a.create('u1', 'deep', { depth: 20_000 });
    await until(
      async () => (await a.get('u1', id)).status !== 'running' && (await a.get('u1', id)).status !== 'queued',
    );
    const expected = { status: 'failed', error: expect.stringMatching(/result cannot be sent: .*deeper than 64/) };
    expect(await a.get('u1', id)).toMatchObject(expected);
    expect(await b.get('u1', id)).toMatchObject(expected);
    expect(outcomes(await hot(), id).map((event) => event.type)).toEqual(['task.failed']);
    expect(outcomes(await stored(), id).map((event) => event.type)).toEqual(['task.failed']);
    // Within the limit, the result goes out unchanged.
    const fine = await a.create('u1', 'deep', { depth: 60 });
    await until(async () => (await b.get('u1', fine)).status === 'completed');
  });

  it('another instance sees a queued task as queued', async () => {
    const a = instance('a', { maxConcurrentPerUser: 1 });
    const b = instance('b');
    const running = await a.create('u1', 'demo', { stages: 1, stageMs: 5_000 });
    const queued = await a.create('u1', 'demo', { stages: 4, stageMs: 10 });
    expect(await b.get('u1', queued)).toEqual({
      taskId: queued,
      kind: 'demo',
      status: 'queued',
      stage: 'Stage 1',
      stageIndex: 0,
      stageCount: 4,
      percent: 0,
    });
    await b.cancel('u1', queued);
    await until(async () => (await a.get('u1', queued)).status === 'cancelled');
    await b.cancel('u1', running);
    await until(async () => (await a.get('u1', running)).status === 'cancelled');
    expect((await hot()).filter((event) => (event.payload as { taskId: string }).taskId === queued)).toEqual([
      expect.objectContaining({ type: 'task.cancelled' }),
    ]);
  });

  it('a cancel landing on another instance stops the task where it runs; nothing follows the cancel', async () => {
    const a = instance('a');
    const b = instance('b');
    const id = await a.create('u1', 'demo', { stages: 3, stageMs: 2_000 });
    await until(async () => (await hot()).filter((event) => event.type === 'task.progress').length >= 3);
    await b.cancel('u1', id);
    await until(async () => (await a.get('u1', id)).status === 'cancelled');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(outcomes(await stored(), id).map((event) => event.type)).toEqual(['task.cancelled']);
    const events = await hot();
    const cancelledAt = events.findIndex((event) => event.type === 'task.cancelled');
    expect(events.slice(cancelledAt + 1)).toEqual([]);
    expect(await b.get('u1', id)).toMatchObject({ status: 'cancelled', stage: 'Stage 1' });
  });

  it('recovery fails only its own orphans, with their last stored stage; others once surely dead', async () => {
    let now = Date.now();
    const startedAt = now - 2_000;
    const mine = newTaskId(instanceTagOf('b'), startedAt);
    const elsewhere = newTaskId(instanceTagOf('still-running-elsewhere'), startedAt);
    for (const [id, user] of [
      [mine, 'u1'],
      [elsewhere, 'u2'],
    ] as const) {
      const stages = ['One', 'Two'];
      const entry = journalEntry(id, user, { kind: 'demo', stages });
      await publisher.publish({ topic: TASK_JOURNAL_TOPIC, type: 'journal.started', payload: entry, critical: true });
      const progress = { taskId: id, stage: 'Two', stageIndex: 1, stageCount: 2, percent: 50 };
      await publisher.publish({ topic: `user:${user}`, type: 'task.progress', payload: progress, critical: true });
    }
    const metrics = new Metrics({ defaultMetrics: false });
    const b = instance('b', { now: () => now, maxDurationMs: 10_000, metrics });
    await b.start();
    expect(outcomes(await stored('user:u1'), mine).map((event) => event.payload)).toEqual([
      { taskId: mine, error: RESTART_ERROR, stage: 'Two' },
    ]);
    expect(outcomes(await stored('user:u2'), elsewhere)).toEqual([]);
    expect(await b.get('u2', elsewhere)).toMatchObject({ status: 'running', stage: 'Two', percent: 50 });
    now += 75_000;
    expect(await b.get('u2', elsewhere)).toMatchObject({ status: 'failed', error: RESTART_ERROR, stage: 'Two' });
    expect(await b.get('u2', elsewhere)).toMatchObject({ status: 'failed', error: RESTART_ERROR });
    expect(outcomes(await stored('user:u2'), elsewhere)).toHaveLength(1);
    expect(await metrics.registry.getSingleMetricAsString('tasks_total')).toMatch(
      /tasks_total\{kind="demo",outcome="interrupted"\} 2/,
    );
  });

  it('fails a task past its time limit, in its stage', async () => {
    const a = instance('a', { maxDurationMs: 300 });
    const id = await a.create('u1', 'demo', { stages: 2, stageMs: 5_000 });
    await until(async () => (await a.get('u1', id)).status === 'failed');
    const [failed] = outcomes(await stored(), id);
    expect(failed?.payload).toEqual({ taskId: id, error: expect.stringMatching(/longer than/), stage: 'Stage 1' });
  });

  it('fails in the stage that threw, showing only safe messages', async () => {
    const a = instance('a');
    const safe = await a.create('u1', 'throwing', { safe: true });
    const unsafe = await a.create('u1', 'throwing', { safe: false });
    await until(async () => (await a.get('u1', unsafe)).status === 'failed');
    await until(async () => (await a.get('u1', safe)).status === 'failed');
    expect(outcomes(await stored(), safe).map((event) => event.payload)).toEqual([
      { taskId: safe, error: 'the draft is empty', stage: 'Two' },
    ]);
    expect(outcomes(await stored(), unsafe).map((event) => event.payload)).toEqual([
      { taskId: unsafe, error: INTERNAL_ERROR, stage: 'Two' },
    ]);
  });

  it('cancels a kind that ignores its signal', async () => {
    const a = instance('a');
    const id = await a.create('u1', 'stubborn', {});
    await until(async () => (await a.get('u1', id)).percent === 50);
    await a.cancel('u1', id);
    expect(await a.get('u1', id)).toMatchObject({ status: 'cancelled', message: 'half way, for ever' });
  });

  it('stop() fails running and queued tasks and refuses new ones', async () => {
    const a = instance('a', { maxConcurrentPerUser: 1 });
    const running = await a.create('u1', 'demo', { stages: 2, stageMs: 5_000 });
    const queued = await a.create('u1', 'demo', {});
    await a.stop();
    expect(await a.get('u1', running)).toMatchObject({ status: 'failed', error: SHUTDOWN_ERROR, stage: 'Stage 1' });
    expect(await a.get('u1', queued)).toMatchObject({ status: 'failed', error: SHUTDOWN_ERROR });
    await expect(a.create('u1', 'demo', {})).rejects.toMatchObject({ code: 'shutting_down' });
  });

  it('with continueAfterRestart, stop() hands tasks over and the next start continues them after their finished stages', async () => {
    const first = instance('a', { maxConcurrentPerUser: 1, continueAfterRestart: true });
    const running = await first.create('u1', 'stagewise', { stageMs: 400 });
    const queued = await first.create('u1', 'stagewise', { stageMs: 40 });
    await until(async () => (await first.get('u1', running)).stageIndex === 1);
    await first.stop();

    // The same instance again (same INSTANCE_ID): it takes both over.
    const second = instance('a', { maxConcurrentPerUser: 1, continueAfterRestart: true });
    await second.start();
    await until(async () => (await second.get('u1', queued)).status === 'completed');
    expect(await second.get('u1', running)).toMatchObject({ status: 'completed', percent: 100 });
    // The first stage ran once, before the stop; the one cut halfway ran again, from its start.
    expect(stagesBegun.filter((entry) => entry.startsWith(running))).toEqual([
      `${running}:0`,
      `${running}:1`,
      `${running}:1`,
      `${running}:2`,
    ]);
    expect((await second.get('u1', running)).result).toEqual({ outputs: ['output of 0', 'fresh'] });
    expect(stagesBegun.filter((entry) => entry.startsWith(queued))).toHaveLength(3);
    // One outcome each, and progress that never went back across the restart.
    const events = [...(await stored()), ...(await hot())].sort((x, y) => x.id - y.id);
    const unique = events.filter((event, index) => index === 0 || event.id !== events[index - 1]?.id);
    for (const id of [running, queued]) {
      expect(outcomes(unique, id).map((event) => event.type)).toEqual(['task.completed']);
      const progress = unique
        .filter((event) => event.type === 'task.progress' && (event.payload as { taskId: string }).taskId === id)
        .map((event) => event.payload as { percent: number; stageIndex: number });
      expect(progress.length).toBeGreaterThan(2);
      progress.forEach((update, index) => {
        expect(update.percent).toBeGreaterThanOrEqual(progress[index - 1]?.percent ?? 0);
        expect(update.stageIndex).toBeGreaterThanOrEqual(progress[index - 1]?.stageIndex ?? 0);
      });
    }
  });

  it('refuses to start when the store is down, without using up the user’s slots', async () => {
    const a = instance('a', { maxConcurrentPerUser: 1, maxQueuedPerUser: 0 });
    log.setStoreDown(true);
    for (let attempt = 0; attempt < 3; attempt++) {
      await expect(a.create('u1', 'demo', { stageMs: 0 })).rejects.toMatchObject({ code: 'store_unavailable' });
    }
    log.setStoreDown(false);
    const id = await a.create('u1', 'demo', { stages: 1, stageMs: 2_000 });
    await expect(a.create('u1', 'demo', {})).rejects.toMatchObject({ code: 'rate_limited' });
    await a.cancel('u1', id);
    expect((await a.get('u1', id)).status).toBe('cancelled');
  });
});
