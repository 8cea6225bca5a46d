import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { openSharedEventLog, type SharedEventLog } from '../../../test/helpers/shared-event-log.js';
import { ProviderError, type AIProvider, type CompletionChunk } from '../../adapters/ai/ai-provider.js';
import { RedisConnectionLeases } from '../../adapters/leases/connection-leases.js';
import { Metrics } from '../../adapters/observability/metrics.js';
import { AppError } from '../../core/errors.js';
import type { EventRecord } from '../../core/event-record.js';
import * as generations from '../generations/generation-service.js';
import { TaskCatalog } from '../tasks/task-catalog.js';
import { defineTaskKind, TaskError } from '../tasks/task-kind.js';
import * as tasks from '../tasks/task-runner.js';

const REDIS_URL = 'redis://127.0.0.1:6379';

/** Polls an async condition every 10 ms for up to 10 s. */
async function until(condition: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** What a job does, whatever its kind runs it on (a provider for generations, a task kind's run). */
type Behaviour = 'wait' | 'deaf' | 'unsafe-error' | 'safe-error';
const SECRET = 'connect ECONNREFUSED 10.0.0.7:5432 (password=hunter2)';
const SAFE = 'the model refused this request';

/** Resolves once `signal` aborts. */
const aborted = (signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
/** Never settles: a provider or kind that ignores its signal. */
const never = () => new Promise<never>(() => undefined);

/** A provider whose behaviour is named by the request's last message. */
const provider: AIProvider = {
  info: { kind: 'custom', label: 'test', model: 'test' },
  async *stream(request): AsyncIterable<CompletionChunk> {
    const behaviour = request.messages.at(-1)?.content as Behaviour;
    yield { type: 'delta', text: 'Once' };
    if (behaviour === 'unsafe-error') throw new Error(SECRET);
    if (behaviour === 'safe-error') throw new ProviderError('provider', SAFE);
    if (behaviour === 'deaf') await never();
    await aborted(request.signal);
    throw new ProviderError('aborted', 'aborted');
  },
};

/** A task kind whose behaviour is its input's. */
const scripted = defineTaskKind({
  name: 'scripted',
  description: 'does what its input says',
  input: z.object({ behaviour: z.enum(['wait', 'deaf', 'unsafe-error', 'safe-error']).default('wait') }),
  stages: ['Work'],
  async run({ input, signal, progress }) {
    progress(0, 0.5);
    if (input.behaviour === 'unsafe-error') throw new Error(SECRET);
    if (input.behaviour === 'safe-error') throw new TaskError(SAFE);
    if (input.behaviour === 'deaf') return never();
    await aborted(signal);
    return null;
  },
});

/** One instance's service of a kind, as the job runner's tests see it. */
interface Service {
  create(userId: string, behaviour: Behaviour): Promise<string>;
  cancel(userId: string, id: string): Promise<void>;
  get(userId: string, id: string): Promise<{ status: string; error?: string }>;
  stop(): Promise<void>;
  /** How many of its jobs this instance counted with `outcome`. */
  counted(outcome: string): Promise<number>;
}

interface InstanceOptions {
  maxConcurrentPerUser: number;
  leases?: RedisConnectionLeases;
}

/** Both kinds behind one face: the lifecycle under test is the same code for both. */
const KINDS = [
  {
    name: 'generation',
    idField: 'generationId',
    prefix: 'ai.generation.',
    internalError: generations.INTERNAL_ERROR,
    instance(log: SharedEventLog, instanceId: string, options: InstanceOptions): Service {
      const metrics = new Metrics({ defaultMetrics: false });
      const service = new generations.GenerationService({
        provider,
        publisher: log.publisher,
        bus: log.bus,
        store: log.store,
        metrics,
        logger: log.logger,
        instanceId,
        flushMs: 10,
        maxConcurrentPerUser: options.maxConcurrentPerUser,
        ...(options.leases ? { leases: options.leases, leaseRefreshMs: 1_000 } : {}),
        defaultMaxTokens: 100,
        maxDurationMs: 60_000,
        singleInstance: false,
      });
      return {
        create: (userId, behaviour) => service.create(userId, { messages: [{ role: 'user', content: behaviour }] }),
        cancel: (userId, id) => service.cancel(userId, id),
        get: (userId, id) => service.get(userId, id),
        stop: () => service.stop(),
        counted: async (outcome) => countOf(await metrics.aiGenerations.get(), outcome),
      };
    },
  },
  {
    name: 'task',
    idField: 'taskId',
    prefix: 'task.',
    internalError: tasks.INTERNAL_ERROR,
    instance(log: SharedEventLog, instanceId: string, options: InstanceOptions): Service {
      const metrics = new Metrics({ defaultMetrics: false });
      const runner = new tasks.TaskRunner({
        catalog: new TaskCatalog([scripted]),
        provider,
        publisher: log.publisher,
        bus: log.bus,
        store: log.store,
        metrics,
        logger: log.logger,
        instanceId,
        maxConcurrentPerUser: options.maxConcurrentPerUser,
        maxQueuedPerUser: 0,
        ...(options.leases ? { leases: options.leases, leaseRefreshMs: 1_000 } : {}),
        progressIntervalMs: 10,
        maxDurationMs: 60_000,
        singleInstance: false,
      });
      return {
        create: (userId, behaviour) => runner.create(userId, 'scripted', { behaviour }),
        cancel: (userId, id) => runner.cancel(userId, id),
        get: (userId, id) => runner.get(userId, id),
        stop: () => runner.stop(),
        counted: async (outcome) => countOf(await metrics.tasks.get(), outcome),
      };
    },
  },
] as const;

function countOf(metric: { values: { value: number; labels: Record<string, unknown> }[] }, outcome: string): number {
  return metric.values.filter((value) => value.labels.outcome === outcome).reduce((sum, value) => sum + value.value, 0);
}

describe.each(KINDS)('JobRunner with the $name kind', (kind) => {
  let log: SharedEventLog;
  let services: Service[];
  let leases: RedisConnectionLeases[];

  beforeEach(async () => {
    log = await openSharedEventLog();
    services = [];
    leases = [];
  });
  afterEach(async () => {
    await Promise.allSettled(services.map((service) => service.stop()));
    await Promise.allSettled(leases.map((lease) => lease.close()));
    await log.close();
  });

  function instance(instanceId: string, options: Partial<InstanceOptions> = {}): Service {
    const service = kind.instance(log, instanceId, { maxConcurrentPerUser: 3, ...options });
    services.push(service);
    return service;
  }

  /** Cluster-wide counting as two instances sharing Redis do it (one key prefix per test). */
  function sharedLeases(prefix: string): RedisConnectionLeases {
    const counter = new RedisConnectionLeases({
      url: REDIS_URL,
      keyPrefix: prefix,
      keyspace: kind.name,
      ttlMs: 30_000,
    });
    leases.push(counter);
    return counter;
  }

  const events = async (id: string): Promise<EventRecord[]> =>
    (await log.bus.read(['user:u1'], 0, 10_000)).events.filter(
      (event) => (event.payload as Record<string, unknown>)[kind.idField] === id,
    );
  const outcomeOf = async (id: string) =>
    (await events(id)).filter((event) => /\.(completed|failed|cancelled)$/.test(event.type));

  it('a cancel taken by another instance is counted once, by the instance running the job', async () => {
    const a = instance('a');
    const b = instance('b');
    const id = await a.create('u1', 'wait');
    await b.cancel('u1', id);
    await until(async () => (await a.get('u1', id)).status === 'cancelled');
    expect((await outcomeOf(id)).map((event) => event.type)).toEqual([`${kind.prefix}cancelled`]);
    expect((await a.counted('cancelled')) + (await b.counted('cancelled'))).toBe(1);
  });

  it('a failure shows a typed error’s message and hides any other behind the same safe message', async () => {
    const a = instance('a');
    const safe = await a.create('u1', 'safe-error');
    const unsafe = await a.create('u1', 'unsafe-error');
    await until(async () => (await a.get('u1', unsafe)).status === 'failed');
    await until(async () => (await a.get('u1', safe)).status === 'failed');
    const [unsafeFailed] = await outcomeOf(unsafe);
    const [safeFailed] = await outcomeOf(safe);
    expect(unsafeFailed?.payload).toMatchObject({ error: kind.internalError });
    expect(JSON.stringify(unsafeFailed?.payload)).not.toContain('hunter2');
    expect(safeFailed?.payload).toMatchObject({ error: SAFE });
    expect(await a.get('u1', unsafe)).toMatchObject({ status: 'failed', error: kind.internalError });
    expect(kind.internalError).toBe(`the ${kind.name} failed unexpectedly`);
  });

  it('holds the per-user limit across two instances sharing Redis', async () => {
    const prefix = `jr-${randomUUID()}`;
    const a = instance('a', { maxConcurrentPerUser: 1, leases: sharedLeases(prefix) });
    const b = instance('b', { maxConcurrentPerUser: 1, leases: sharedLeases(prefix) });
    const first = await a.create('u1', 'wait');
    const refused = await b.create('u1', 'wait').then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(AppError);
    expect((refused as AppError).code).toBe('rate_limited');
    // Another user is not held back, and the slot is the user's again once the first job ends.
    await b.cancel('u2', await b.create('u2', 'wait'));
    await a.cancel('u1', first);
    const second = await b.create('u1', 'wait');
    expect((await b.get('u1', second)).status).not.toBe('failed');
  });

  it('a cancel ends a job whose work ignores its signal at once, and frees its slot', async () => {
    const a = instance('a', { maxConcurrentPerUser: 1 });
    const deaf = await a.create('u1', 'deaf');
    await until(async () => (await events(deaf)).length > 1);
    await a.cancel('u1', deaf);
    expect((await outcomeOf(deaf)).map((event) => event.type)).toEqual([`${kind.prefix}cancelled`]);
    expect((await a.get('u1', deaf)).status).toBe('cancelled');
    // Its slot is free: the limit of one admits the next.
    const next = await a.create('u1', 'wait');
    await a.cancel('u1', next);
    expect((await a.get('u1', next)).status).toBe('cancelled');
  });
});

describe('JobRunner with the task kind’s queue', () => {
  let log: SharedEventLog;
  let runners: tasks.TaskRunner[];
  let leases: RedisConnectionLeases[];

  beforeEach(async () => {
    log = await openSharedEventLog();
    runners = [];
    leases = [];
  });
  afterEach(async () => {
    await Promise.allSettled(runners.map((runner) => runner.stop()));
    await Promise.allSettled(leases.map((lease) => lease.close()));
    await log.close();
  });

  it('a task past the cluster-wide limit waits queued on its instance and runs once the other instance’s ends; the queue limit is cluster-wide', async () => {
    const prefix = `jr-${randomUUID()}`;
    const make = (instanceId: string) => {
      const counter = new RedisConnectionLeases({
        url: REDIS_URL,
        keyPrefix: prefix,
        keyspace: 'tasks',
        ttlMs: 30_000,
      });
      leases.push(counter);
      const runner = new tasks.TaskRunner({
        catalog: new TaskCatalog([scripted]),
        provider,
        publisher: log.publisher,
        bus: log.bus,
        store: log.store,
        metrics: new Metrics({ defaultMetrics: false }),
        logger: log.logger,
        instanceId,
        maxConcurrentPerUser: 1,
        maxQueuedPerUser: 1,
        leases: counter,
        leaseRefreshMs: 1_000,
        progressIntervalMs: 10,
        maxDurationMs: 60_000,
        singleInstance: false,
      });
      runners.push(runner);
      return runner;
    };
    const a = make('a');
    const b = make('b');
    const first = await a.create('u1', 'scripted', {});
    await until(async () => (await a.get('u1', first)).status === 'running');
    const second = await b.create('u1', 'scripted', {});
    expect((await b.get('u1', second)).status).toBe('queued');
    await expect(b.create('u1', 'scripted', {})).rejects.toMatchObject({ code: 'rate_limited' });
    // The queue limit holds for the cluster too: a has nobody waiting, but b holds the one place.
    await expect(a.create('u1', 'scripted', {})).rejects.toMatchObject({ code: 'rate_limited' });
    await a.cancel('u1', first);
    await until(async () => (await b.get('u1', second)).status === 'running');
    // Running, it gave its place in the queue back: another may wait now, on either instance.
    const third = await a.create('u1', 'scripted', {});
    expect((await a.get('u1', third)).status).toBe('queued');
    await a.cancel('u1', third);
    expect((await a.get('u1', third)).status).toBe('cancelled');
    // Cancelled while waiting, it gave its place back too.
    const fourth = await b.create('u1', 'scripted', {});
    expect((await b.get('u1', fourth)).status).toBe('queued');
    await b.cancel('u1', fourth);
    await b.cancel('u1', second);
    expect((await b.get('u1', second)).status).toBe('cancelled');
  });
});
