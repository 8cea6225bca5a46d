import { userTopic } from '@infinitescribe/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type { EventBus } from '../../adapters/bus/event-bus.js';
import type { ConnectionLeases } from '../../adapters/leases/connection-leases.js';
import { AppError, InvalidEventError, userMessageOf } from '../../core/errors.js';
import type { EventPublisher } from '../events/event-publisher.js';
import { JobCancels } from './job-cancels.js';
import type { Job, JobKind, JobOutcome, JobState, StopReason, UnfinishedJob } from './job-kind.js';
import { DEFAULT_RECOVERY_LOOKBACK_MS, JobRegistry, SETTLE_WAIT_MS, settleWithin } from './job-registry.js';
import { JobSlots } from './job-slots.js';

/** Options of {@link JobRunner}. */
export interface JobRunnerOptions {
  publisher: EventPublisher;
  bus: EventBus;
  logger: FastifyBaseLogger;
  instanceId: string;
  maxRunningPerUser: number;
  /** Jobs past the running limit wait, up to this many per user; 0: a 429 at once. */
  maxQueuedPerUser: number;
  /** Jobs one user may start per window. */
  createRate?: { max: number; windowMs: number };
  /** Makes `maxRunningPerUser` cluster-wide (job-slots.ts); without it, per instance. */
  leases?: ConnectionLeases;
  leaseRefreshMs?: number;
  /** A job not finished this long after creation fails. */
  maxDurationMs: number;
  /** No other instance can be running jobs on this log. Default: true with the in-process bus. */
  singleInstance?: boolean;
  /**
   * A clean stop hands running and queued jobs over (checkpoint) instead of failing them, and a
   * start continues the ones handed over that it may take. Default: `singleInstance`.
   */
  continueAfterRestart?: boolean;
  recoveryLookbackMs?: number;
  now?: () => number;
}

/** The runner's own bookkeeping of a job, beside what the kind sees. */
interface Entry<TSpec, TWork> extends Job<TSpec, TWork> {
  readonly controller: AbortController;
  /** Settles once clients were told it started (rejects if that could not go out). */
  announced: Promise<unknown>;
  /** Journalled, and reachable by cancels from other instances. */
  ready: boolean;
  /** Holds a running slot: runs once ready. */
  granted: boolean;
  deadline?: NodeJS.Timeout;
  /** Resolves once it has an outcome here (or was handed over / abandoned) and its slot is free. */
  done: Promise<void>;
  markDone: () => void;
}

const TERMINAL = new Set<JobState['state']>(['completed', 'failed', 'cancelled', 'handed_over']);

/**
 * Runs jobs of one kind server-side, independent of any connection, with one lifecycle for every
 * kind: admission (per-user limits, cluster-wide with leases; a queue where the kind has one), a
 * journal entry that makes the job known to every instance, cancel here or on any instance (the
 * instance taking the request publishes `cancelled`; the owner stops and counts it), a time limit,
 * one rule for the message of a failure, hand-over at a clean stop and continuation at the next
 * start, and `failed` for orphans. State lives in the event log; the in-memory registry serves this
 * instance's own jobs and holds their abort handles.
 */
export class JobRunner<TSpec, TWork, TCheckpoint, TView extends { status: string; error?: string }> {
  private readonly jobs: JobRegistry<Entry<TSpec, TWork>>;
  private readonly slots: JobSlots;
  private readonly cancels: JobCancels;
  private readonly continueAfterRestart: boolean;
  private readonly now: () => number;
  private stopping = false;

  constructor(
    private readonly kind: JobKind<TSpec, TWork, TCheckpoint, TView>,
    private readonly options: JobRunnerOptions,
  ) {
    this.now = options.now ?? Date.now;
    const singleInstance = options.singleInstance ?? options.bus.kind === 'memory';
    this.continueAfterRestart = options.continueAfterRestart ?? singleInstance;
    this.jobs = new JobRegistry({
      instanceId: options.instanceId,
      singleInstance,
      maxDurationMs: options.maxDurationMs,
      parseId: (id) => kind.parseId(id),
      noun: kind.noun,
      ...(options.createRate ? { createRate: options.createRate } : {}),
      now: this.now,
    });
    this.slots = new JobSlots({
      noun: kind.noun,
      maxRunningPerUser: options.maxRunningPerUser,
      maxQueuedPerUser: options.maxQueuedPerUser,
      ...(options.leases ? { leases: options.leases } : {}),
      ...(options.leaseRefreshMs !== undefined ? { leaseRefreshMs: options.leaseRefreshMs } : {}),
      onGranted: (userId, id) => this.onGranted(userId, id),
    });
    this.cancels = new JobCancels({
      bus: options.bus,
      publisher: options.publisher,
      logger: options.logger,
      onCancel: (jobId, userId) => this.onRemoteCancel(jobId, userId),
    });
  }

  /**
   * Recovery at start: every journalled job without an outcome that cannot be running anywhere is
   * continued from its checkpoint when a clean stop handed it over and it has time left; any other
   * gets `failed` with the kind's restart error. Store trouble is logged, not fatal.
   */
  async start(): Promise<void> {
    const { logger } = this.options;
    this.slots.start();
    await this.cancels.listen();
    try {
      const lookback = this.options.recoveryLookbackMs ?? DEFAULT_RECOVERY_LOOKBACK_MS;
      const unfinished = await this.kind.unfinished(this.now() - lookback);
      let failed = 0;
      let continued = 0;
      for (const orphan of unfinished) {
        if (this.jobs.has(orphan.jobId) || !this.jobs.isOrphan(orphan.jobId)) continue;
        if (await this.continueOrphan(orphan)) continued++;
        else {
          await this.failOrphan(orphan.userId, orphan.jobId, orphan.label, orphan.known);
          failed++;
        }
      }
      const { noun } = this.kind;
      if (continued > 0) logger.info({ continued }, `${noun}s handed over by the previous process continue`);
      if (failed > 0) logger.warn({ failed }, `${noun}s left running by a previous process were marked failed`);
    } catch (error) {
      logger.warn({ err: error }, `could not check for ${this.kind.noun}s left running; they fail when next read`);
    }
  }

  /**
   * Admits and journals a job of `userId` and resolves with its id once journalled (so GET and
   * cancel work at once, from any instance); it runs at once or waits queued.
   * @throws AppError `rate_limited` past the per-user limits, `shutting_down`, `store_unavailable`.
   */
  async create(userId: string, spec: TSpec): Promise<string> {
    if (this.stopping) throw new AppError('shutting_down', 'the server is shutting down');
    this.jobs.admitCreation(userId);
    const now = this.now();
    const id = this.kind.newId(this.jobs.instanceTag, now);
    const admission = await this.slots.admit(userId, id);
    const job = this.register({ id, userId, spec, createdAt: now });
    job.granted = admission === 'run';
    // Normally listening since start(); not awaited by an eager kind: its first output must not wait.
    const listening = this.cancels.listen();
    const journalled = this.publish(
      this.kind.journalTopic,
      'journal.started',
      { jobId: id, userId, request: this.kind.journalRequest(spec) },
      true,
    );
    job.announced = this.kind.announce ? this.kind.announce(job) : journalled;
    job.announced.catch(() => undefined);
    if (this.kind.eagerStart) this.ready(job, this.options.maxDurationMs);
    try {
      await Promise.all([journalled, job.announced, this.kind.eagerStart ? undefined : listening]);
    } catch (error) {
      this.interrupt(job, 'unannounced');
      await settleWithin(job.done, SETTLE_WAIT_MS);
      this.jobs.delete(id);
      throw error;
    }
    if (!this.kind.eagerStart) this.ready(job, Math.max(0, now + this.options.maxDurationMs - this.now()));
    return id;
  }

  /**
   * Cancels a job of `userId`: a queued one leaves the queue, a running one is stopped; either way
   * `cancelled` is published. Finished ones are left as they are. One on another instance is
   * cancelled by publishing `cancelled` here, then asking that instance to stop it; that instance
   * counts the outcome (this one only for an orphan, which nobody else will count).
   * @throws AppError `not_found` for an unknown id or another user's job.
   */
  async cancel(userId: string, id: string): Promise<void> {
    const local = this.jobs.owned(userId, id);
    if (local) {
      this.interrupt(local, 'user');
      await settleWithin(local.done, SETTLE_WAIT_MS);
      return;
    }
    const logged = await this.kind.find(userId, id);
    if (!logged) throw this.jobs.notFound(id);
    if (logged.finished) return;
    await this.publish(userTopic(userId), this.kind.outcomeTypes.cancelled, { [this.kind.idField]: id }, true);
    if (this.jobs.isOrphan(id)) this.kind.count(logged.label, 'cancelled');
    await this.cancels.request(id, userId).catch((error: unknown) => {
      this.options.logger.warn({ err: error, jobId: id }, 'cancelled, but its instance could not be told to stop');
    });
  }

  /**
   * Where a job of `userId` stands, from this instance's memory or the log (an orphan found there
   * is failed first).
   * @throws AppError `not_found` for an unknown id or another user's job.
   */
  async get(userId: string, id: string): Promise<TView> {
    const local = this.jobs.owned(userId, id);
    if (local) {
      // Its outcome may already be out (a client has it) while its publish is being confirmed.
      if (local.state.state === 'finishing') await settleWithin(local.done, SETTLE_WAIT_MS);
      return this.kind.view(local);
    }
    const logged = await this.kind.find(userId, id);
    if (!logged) throw this.jobs.notFound(id);
    if (!logged.finished && this.jobs.isOrphan(id)) {
      await this.failOrphan(userId, id, logged.label, logged.known);
      return { ...logged.view, status: 'failed', error: this.kind.restartError };
    }
    return logged.view;
  }

  /**
   * Stops every queued and running job: hands it over with a checkpoint for the next start (see
   * {@link JobRunnerOptions.continueAfterRestart}), or else ends it with `failed` and the kind's
   * shutdown error. Call before the store closes.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.slots.close();
    const open = this.jobs.all().filter((job) => !TERMINAL.has(job.state.state));
    for (const job of open) this.interrupt(job, 'shutdown');
    await settleWithin(Promise.allSettled(open.map((job) => job.done)), SETTLE_WAIT_MS);
    await this.cancels.close();
  }

  private register(fields: { id: string; userId: string; spec: TSpec; createdAt: number }, checkpoint?: TCheckpoint) {
    const topic = userTopic(fields.userId);
    const controller = new AbortController();
    let markDone: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (markDone = resolve));
    const job: Entry<TSpec, TWork> = {
      ...fields,
      topic,
      label: this.kind.labelOf(fields.spec),
      work: this.kind.createWork({ ...fields, topic }, checkpoint),
      controller,
      signal: controller.signal,
      state: { state: 'queued' },
      announced: Promise.resolve(),
      ready: false,
      granted: false,
      done,
      markDone,
    };
    this.jobs.add(job);
    return job;
  }

  /** Journalled (or eager): arms its time limit and starts it if it holds a slot. */
  private ready(job: Entry<TSpec, TWork>, timeLeftMs: number): void {
    job.deadline = setTimeout(() => this.interrupt(job, 'timeout'), timeLeftMs);
    job.ready = true;
    if (job.granted) this.begin(job);
  }

  private onGranted(userId: string, id: string): void {
    const job = this.jobs.get(id);
    if (!job || job.state.state !== 'queued') {
      // Gone meanwhile (cancelled, abandoned): the slot goes on to the next.
      void this.slots.release(userId, id);
      return;
    }
    job.granted = true;
    if (job.ready) this.begin(job);
  }

  private begin(job: Entry<TSpec, TWork>): void {
    if (job.state.state !== 'queued') {
      // Stopped while being set up: it never runs, and gives its slot back.
      void this.slots.release(job.userId, job.id);
      return;
    }
    job.state = { state: 'running' };
    void this.run(job);
  }

  /**
   * Continues a job handed over by a clean stop, here, from its checkpoint: same id, admitted again
   * (it counts whatever its user started since). False when it cannot be (no checkpoint or spec,
   * out of time).
   */
  private async continueOrphan(orphan: UnfinishedJob<TSpec, TCheckpoint>): Promise<boolean> {
    const { jobId, userId, spec, checkpoint } = orphan;
    const parts = this.kind.parseId(jobId);
    if (!this.continueAfterRestart || spec === undefined || checkpoint === undefined || !parts) return false;
    const timeLeft = parts.startedAtMs + this.options.maxDurationMs - this.now();
    if (timeLeft <= 0) return false;
    const admission = await this.slots.admit(userId, jobId, true);
    const job = this.register({ id: jobId, userId, spec, createdAt: parts.startedAtMs }, checkpoint);
    job.granted = admission === 'run';
    this.ready(job, timeLeft);
    this.kind.count(job.label, 'continued');
    return true;
  }

  private async run(job: Entry<TSpec, TWork>): Promise<void> {
    const work = this.kind.run(job);
    // Work that ignores its signal (a deaf provider) cannot hold up the outcome or the slot.
    work.catch(() => undefined);
    try {
      const result = await Promise.race([work, abortion(job.signal)]);
      if (job.state.state !== 'running') throw new Error('stopped');
      await this.kind.drain(job);
      await this.finish(job, 'completed', { result });
    } catch (error) {
      await this.finishAfterError(job, error);
    } finally {
      await this.slots.release(job.userId, job.id);
      job.markDone();
    }
  }

  private async finishAfterError(job: Entry<TSpec, TWork>, error: unknown): Promise<void> {
    const reason = job.state.state === 'stopping' ? job.state.reason : undefined;
    if (job.state.state !== 'running' && reason === undefined) return;
    if (reason === 'remote') {
      // The instance that took the cancel request published `cancelled` (and counts it only for an orphan).
      job.state = { state: 'finishing', outcome: 'cancelled' };
      await this.kind.stopOutput(job);
      return this.settle(job, { state: 'cancelled' });
    }
    if (reason === 'unannounced') return this.abandon(job);
    try {
      // What was produced before the end goes out, so the outputs match the state so far.
      await this.kind.drain(job);
    } catch (drainError) {
      this.options.logger.warn({ err: drainError, jobId: job.id }, 'last output not published');
    }
    switch (reason) {
      case 'user':
        return this.finish(job, 'cancelled');
      case 'shutdown':
        if (this.continueAfterRestart && (await this.handOver(job))) return;
        return this.finish(job, 'failed', { error: this.kind.shutdownError });
      case 'timeout':
        return this.finish(job, 'failed', {
          error: `the ${this.kind.noun} took longer than its limit of ${this.options.maxDurationMs} ms`,
        });
      default:
        this.options.logger.warn({ err: error, jobId: job.id }, `${this.kind.noun} failed`);
        return this.finish(job, 'failed', { error: userMessageOf(error, this.kind.internalError) });
    }
  }

  /**
   * Leaves a job for the next start to continue: what clients need (the kind's checkpoint events)
   * and a journal checkpoint. False when either could not be stored: then it must fail here.
   */
  private async handOver(job: Entry<TSpec, TWork>): Promise<boolean> {
    const before = job.state;
    job.state = { state: 'finishing', outcome: 'handed_over' };
    await this.kind.stopOutput(job);
    try {
      const state = await this.kind.checkpoint(job);
      await this.publish(
        this.kind.journalTopic,
        'journal.checkpoint',
        { jobId: job.id, userId: job.userId, state },
        true,
      );
    } catch (error) {
      this.options.logger.warn({ err: error, jobId: job.id }, `${this.kind.noun} not handed over; it fails instead`);
      job.state = before;
      return false;
    }
    this.kind.count(job.label, 'handed_over');
    this.close(job, { state: 'handed_over' });
    return true;
  }

  /** A job that could not be journalled or announced: the request fails, nothing is left running. */
  private async abandon(job: Entry<TSpec, TWork>): Promise<void> {
    const error = `the ${this.kind.noun} could not be started`;
    job.state = { state: 'finishing', outcome: 'failed' };
    await this.kind.stopOutput(job);
    this.close(job, { state: 'failed', error });
    const announced = await job.announced.then(
      () => this.kind.announce !== undefined,
      () => false,
    );
    // Live clients saw it start: tell them it ended, as far as the bus still reaches.
    if (announced) {
      const payload = { [this.kind.idField]: job.id, ...this.kind.outcomePayload(job, 'failed', { error }) };
      await this.publish(job.topic, this.kind.outcomeTypes.failed, payload, false).catch(() => undefined);
    }
  }

  /** Publishes the outcome (critical) after the last output, and settles the job. */
  private async finish(
    job: Entry<TSpec, TWork>,
    outcome: JobOutcome,
    details: { result?: unknown; error?: string } = {},
  ): Promise<void> {
    job.state = { state: 'finishing', outcome };
    // No output after the outcome: what is pending is dropped, what is in flight goes first.
    await this.kind.stopOutput(job);
    const { idField, outcomeTypes, noun } = this.kind;
    try {
      const payload = { [idField]: job.id, ...this.kind.outcomePayload(job, outcome, details) };
      await this.publish(job.topic, outcomeTypes[outcome], payload, true);
      this.settle(job, settled(outcome, details));
    } catch (error) {
      this.options.logger.error({ err: error, jobId: job.id, outcome }, `the outcome of a ${noun} was not stored`);
      const message = error instanceof Error ? error.message : String(error);
      // A result the event path refuses (too deep, not JSON) is the kind's fault, not the store's.
      const reason =
        error instanceof InvalidEventError
          ? `the ${noun}'s result cannot be sent: ${message}`
          : `the outcome could not be stored: ${message}`;
      this.settle(job, { state: 'failed', error: reason });
      if (outcome !== 'failed') {
        const failed = { [idField]: job.id, ...this.kind.outcomePayload(job, 'failed', { error: reason }) };
        await this.publish(job.topic, outcomeTypes.failed, failed, true).catch(() => undefined);
      }
    }
  }

  private settle(job: Entry<TSpec, TWork>, state: Extract<JobState, { state: JobOutcome }>): void {
    this.kind.count(job.label, state.state);
    this.close(job, state);
  }

  private close(job: Entry<TSpec, TWork>, state: JobState): void {
    job.state = state;
    job.finishedAt = this.now();
    clearTimeout(job.deadline);
  }

  /** Another instance took a cancel request for a job and published its `cancelled`. */
  private onRemoteCancel(id: string, userId: string): void {
    const job = this.jobs.get(id);
    if (job && job.userId === userId) this.interrupt(job, 'remote');
  }

  private interrupt(job: Entry<TSpec, TWork>, reason: StopReason): void {
    const { state } = job.state;
    if (state !== 'running' && state !== 'queued') return;
    job.state = { state: 'stopping', reason };
    job.controller.abort();
    if (state === 'queued') void this.dropQueued(job);
  }

  /** A job stopped before it ran leaves the queue (or gives back the slot it was granted) and ends. */
  private async dropQueued(job: Entry<TSpec, TWork>): Promise<void> {
    await this.slots.release(job.userId, job.id);
    await this.finishAfterError(job, undefined);
    job.markDone();
  }

  /** Ends an orphan with `failed`, with what the log knows of it (text so far, stage). */
  private failOrphan(userId: string, id: string, label: string, known: Record<string, unknown>): Promise<void> {
    return this.jobs.repairOnce(id, async () => {
      const details = await this.kind.failedAfterRestart(userId, id, known);
      const failed = { [this.kind.idField]: id, error: this.kind.restartError, ...details };
      await this.publish(userTopic(userId), this.kind.outcomeTypes.failed, failed, true);
      this.kind.count(label, 'interrupted');
    });
  }

  private publish(topic: string, type: string, payload: unknown, critical: boolean): Promise<unknown> {
    return this.options.publisher.publish({ topic, type, payload, critical });
  }
}

function settled(
  outcome: JobOutcome,
  details: { result?: unknown; error?: string },
): Extract<JobState, { state: JobOutcome }> {
  if (outcome === 'completed') return { state: 'completed', result: details.result };
  if (outcome === 'failed') return { state: 'failed', error: details.error ?? 'failed' };
  return { state: 'cancelled' };
}

/** Rejects once `signal` aborts (never resolves otherwise). */
function abortion(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    const fail = () => reject(new Error('stopped'));
    if (signal.aborted) fail();
    else signal.addEventListener('abort', fail, { once: true });
  });
}
