import { userTopic } from '@infinitescribe/protocol';
import type { FastifyBaseLogger } from 'fastify';
import { ProviderError, type AIProvider } from '../../adapters/ai/ai-provider.js';
import type { EventBus } from '../../adapters/bus/event-bus.js';
import { AppError, InvalidEventError } from '../../core/errors.js';
import type { EventPublisher } from '../events/event-publisher.js';
import type { EventRecord } from '../../core/event-record.js';
import type { Metrics } from '../../adapters/observability/metrics.js';
import { JobCancels } from '../jobs/job-cancels.js';
import { TASK_JOURNAL_TOPIC } from '../../core/journal-events.js';
import type { EventStore } from '../../adapters/store/event-store.js';
import type { TaskCatalog } from './task-catalog.js';
import { newTaskId, parseTaskId } from '../../core/job-id.js';
import { DEFAULT_RECOVERY_LOOKBACK_MS, JobRegistry, SETTLE_WAIT_MS, settleWithin } from '../jobs/job-registry.js';
import { TaskError, type PreparedTask, type TaskKindInfo } from './task-kind.js';
import {
  TaskLog,
  isTerminal,
  journalEntry,
  type TaskCheckpoint,
  type TaskStatus,
  type TaskView,
  type UnfinishedTask,
} from './task-log.js';
import { TaskProgress } from './task-progress.js';

/** `failed.error` of a task cut by a clean shutdown of its instance. */
export const SHUTDOWN_ERROR = 'server shut down';
/** `failed.error` of a task found orphaned: its instance stopped without finishing it. */
export const RESTART_ERROR = 'server restarted';
/** `failed.error` when a kind threw something whose message is not meant for users. */
export const INTERNAL_ERROR = 'the task failed unexpectedly';

/** Options of {@link TaskRunner}. */
export interface TaskRunnerOptions {
  catalog: TaskCatalog;
  provider: AIProvider;
  publisher: EventPublisher;
  bus: EventBus;
  store: EventStore;
  metrics: Metrics;
  logger: FastifyBaseLogger;
  instanceId: string;
  maxConcurrentPerUser: number;
  /** Tasks past the concurrency limit wait, up to this many per user; more is a 429. */
  maxQueuedPerUser: number;
  /** Tasks one user may start per window (TASK_CREATE_RATE_MAX per TASK_CREATE_RATE_WINDOW_MS). */
  createRate?: { max: number; windowMs: number };
  /** TASK_PROGRESS_INTERVAL_MS. */
  progressIntervalMs: number;
  /** A task not finished this long after creation fails (TASK_MAX_DURATION_MS). */
  maxDurationMs: number;
  /** As in GenerationServiceOptions: default true with the in-process bus (embedded mode). */
  singleInstance?: boolean;
  /**
   * A clean stop hands queued and running tasks over (checkpoint) instead of failing them, and a
   * start continues the ones handed over that it may take, after their last finished stage; as in
   * GenerationServiceOptions. Default: `singleInstance`.
   */
  continueAfterRestart?: boolean;
  recoveryLookbackMs?: number;
  now?: () => number;
}

type StopReason = 'user' | 'remote' | 'shutdown' | 'timeout';

interface Task {
  id: string;
  userId: string;
  topic: string;
  prepared: PreparedTask;
  status: TaskStatus;
  progress: TaskProgress;
  /** What its finished stages produced, by stage index (TaskRunContext.finishedStages). */
  finishedStages: unknown[];
  controller: AbortController;
  stopReason?: StopReason;
  /** A terminal event is being published: nothing else may be. */
  finishing: boolean;
  result?: unknown;
  error?: string;
  deadline?: NodeJS.Timeout;
  /** Journalled, and cancels from other instances can reach it: it may run. */
  ready: boolean;
  /** It holds a running slot and starts once ready. */
  startWhenReady: boolean;
  /** Resolves once the task has an outcome. */
  done: Promise<void>;
  markDone: () => void;
  finishedAt?: number;
}

interface UserSlots {
  running: number;
  waiting: Task[];
}

/**
 * Runs multi-stage tasks server-side, independent of any connection: each publishes throttled,
 * monotonic `task.progress` on `user:<id>` (the first of each stage critical, so stage starts are
 * stored) and ends with one critical `task.completed`, `task.failed` (with the stage) or
 * `task.cancelled`. Past the per-user concurrency limit tasks wait `queued`. As with generations,
 * state lives in the event log so any instance can answer for any task; the in-memory registry
 * serves this instance's own tasks faster and holds their abort handles.
 */
export class TaskRunner {
  private readonly tasks: JobRegistry<Task>;
  private readonly slots = new Map<string, UserSlots>();
  private readonly log: TaskLog;
  private readonly cancels: JobCancels;
  private readonly now: () => number;
  private readonly continueAfterRestart: boolean;
  private stopping = false;

  constructor(private readonly options: TaskRunnerOptions) {
    this.log = new TaskLog({ bus: options.bus, store: options.store });
    this.now = options.now ?? Date.now;
    const singleInstance = options.singleInstance ?? options.bus.kind === 'memory';
    this.continueAfterRestart = options.continueAfterRestart ?? singleInstance;
    this.tasks = new JobRegistry({
      instanceId: options.instanceId,
      singleInstance,
      maxDurationMs: options.maxDurationMs,
      parseId: parseTaskId,
      noun: 'task',
      ...(options.createRate ? { createRate: options.createRate } : {}),
      now: this.now,
    });
    this.cancels = new JobCancels({
      bus: options.bus,
      publisher: options.publisher,
      logger: options.logger,
      onCancel: (jobId, userId) => this.onRemoteCancel(jobId, userId),
    });
  }

  /** `GET /api/tasks/kinds`. */
  kinds(): TaskKindInfo[] {
    return this.options.catalog.list();
  }

  /**
   * Recovery at start: every journalled task without an outcome that cannot be running anywhere is
   * continued after its last finished stage, when a clean stop handed it over and it has time left;
   * any other gets `task.failed` {@link RESTART_ERROR} with its last stored stage. Store trouble is
   * logged.
   */
  async start(): Promise<void> {
    const { logger } = this.options;
    await this.cancels.listen();
    try {
      const lookback = this.options.recoveryLookbackMs ?? DEFAULT_RECOVERY_LOOKBACK_MS;
      const unfinished = await this.log.unfinished(this.now() - lookback);
      let failed = 0;
      let continued = 0;
      for (const task of unfinished) {
        if (this.tasks.has(task.taskId) || !this.tasks.isOrphan(task.taskId)) continue;
        if (await this.continueOrphan(task)) continued++;
        else {
          await this.failOrphan(task.userId, task);
          failed++;
        }
      }
      if (continued > 0) logger.info({ continued }, 'tasks handed over by the previous process continue');
      if (failed > 0) logger.warn({ failed }, 'tasks left running by a previous process were marked failed');
    } catch (error) {
      logger.warn({ err: error }, 'could not check for tasks left running; they fail when next read');
    }
  }

  /**
   * Creates a task of `kind` and resolves with its id once it is journalled (so GET and cancel
   * work at once, from any instance); it runs at once or waits `queued` behind the user's others.
   * @throws AppError `invalid_request` (unknown kind, bad input), `rate_limited` (queue full),
   * `shutting_down`, `store_unavailable`.
   */
  async create(userId: string, kind: string, input: unknown): Promise<string> {
    if (this.stopping) throw new AppError('shutting_down', 'the server is shutting down');
    const prepared = this.options.catalog.prepare(kind, input);
    this.tasks.admitCreation(userId);
    const { maxConcurrentPerUser, maxQueuedPerUser } = this.options;
    const slots = this.slots.get(userId) ?? { running: 0, waiting: [] };
    const runNow = slots.running < maxConcurrentPerUser;
    if (!runNow && slots.waiting.length >= maxQueuedPerUser) {
      throw new AppError(
        'rate_limited',
        `at most ${maxConcurrentPerUser} tasks may run and ${maxQueuedPerUser} wait at once per user; wait for one to end or cancel it`,
        { headers: { 'retry-after': '1' } },
      );
    }
    const task = this.newTask({ id: newTaskId(this.tasks.instanceTag, this.now()), userId, prepared });
    this.admit(task, slots);
    try {
      // Normally listening since start(): a cancel landing on another instance must reach it.
      await Promise.all([
        this.publish(TASK_JOURNAL_TOPIC, 'journal.started', journalEntry(task.id, userId, prepared), true),
        this.cancels.listen(),
      ]);
    } catch (error) {
      this.tasks.delete(task.id);
      const at = slots.waiting.indexOf(task);
      if (at >= 0) slots.waiting.splice(at, 1);
      else if (task.startWhenReady) this.release(userId);
      throw error;
    }
    this.ready(task, this.options.maxDurationMs);
    return task.id;
  }

  /**
   * Cancels a task of `userId`: a queued one leaves the queue, a running one is aborted; either
   * way `task.cancelled` is published. Finished ones are left as they are. One on another instance
   * is cancelled by publishing `cancelled` here, then asking that instance to stop it
   * (job-cancels.ts).
   * @throws AppError `not_found` for an unknown id or another user's task.
   */
  async cancel(userId: string, taskId: string): Promise<void> {
    const local = this.tasks.owned(userId, taskId);
    if (local) {
      this.interrupt(local, 'user');
      await settleWithin(local.done, SETTLE_WAIT_MS);
      return;
    }
    const logged = await this.log.find(userId, taskId);
    if (!logged) throw this.tasks.notFound(taskId);
    if (isTerminal(logged.status)) return;
    await this.publish(userTopic(userId), 'task.cancelled', { taskId }, true);
    // The instance running it counts its outcome; nobody else will for an orphan.
    if (this.tasks.isOrphan(taskId)) this.options.metrics.tasks.inc({ kind: logged.kind, outcome: 'cancelled' });
    await this.cancels.request(taskId, userId).catch((error: unknown) => {
      this.options.logger.warn({ err: error, taskId }, 'cancelled, but its instance could not be told to stop');
    });
  }

  /**
   * Where a task of `userId` stands, from this instance's memory or the log.
   * @throws AppError `not_found` for an unknown id or another user's task.
   */
  async get(userId: string, taskId: string): Promise<TaskView> {
    const local = this.tasks.owned(userId, taskId);
    if (local) {
      // Its outcome may already be out (a client has it) while its publish is being confirmed.
      if (local.finishing && !isTerminal(local.status)) await settleWithin(local.done, SETTLE_WAIT_MS);
      return viewOf(local);
    }
    const logged = await this.log.find(userId, taskId);
    if (!logged) throw this.tasks.notFound(taskId);
    if (!isTerminal(logged.status) && this.tasks.isOrphan(taskId)) {
      await this.failOrphan(userId, { taskId, kind: logged.kind, stage: logged.stage });
      return { ...logged, status: 'failed', error: RESTART_ERROR };
    }
    return logged;
  }

  /**
   * Stops every queued and running task: hands it over with a checkpoint for the next start to
   * continue (see {@link TaskRunnerOptions.continueAfterRestart}), or else ends it with `failed`
   * {@link SHUTDOWN_ERROR}. Call before the store closes.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    const open = this.tasks.all().filter((task) => !isTerminal(task.status));
    for (const task of open) this.interrupt(task, 'shutdown');
    await settleWithin(Promise.allSettled(open.map((task) => task.done)), SETTLE_WAIT_MS);
    await this.cancels.close();
  }

  private newTask(fields: { id: string; userId: string; prepared: PreparedTask; checkpoint?: TaskCheckpoint }): Task {
    const { id, userId, prepared, checkpoint } = fields;
    const topic = userTopic(userId);
    let markDone: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (markDone = resolve));
    const progress = new TaskProgress({
      stages: prepared.stages,
      intervalMs: this.options.progressIntervalMs,
      now: this.now,
      // Stage starts are critical: stored, so any instance, and recovery, knows the stage.
      publish: async (update, boundary) => {
        await this.publish(topic, 'task.progress', { taskId: id, ...update }, boundary);
      },
      onError: (error) => this.options.logger.warn({ err: error, taskId: id }, 'task progress not published'),
      ...(checkpoint?.progress ? { resumeFrom: checkpoint.progress } : {}),
    });
    return {
      id,
      userId,
      topic,
      prepared,
      status: 'queued',
      progress,
      finishedStages: [...(checkpoint?.finishedStages ?? [])],
      controller: new AbortController(),
      finishing: false,
      ready: false,
      startWhenReady: false,
      done,
      markDone,
    };
  }

  /** Takes a running slot of the task's user if one is free, else queues it; registers it. */
  private admit(task: Task, slots: UserSlots): void {
    const runNow = slots.running < this.options.maxConcurrentPerUser;
    if (runNow) slots.running++;
    else slots.waiting.push(task);
    this.slots.set(task.userId, slots);
    this.tasks.add(task);
    if (runNow) task.startWhenReady = true;
  }

  /** Journalled, and reachable by cancels: arms its time limit and starts it if it holds a slot. */
  private ready(task: Task, timeLeftMs: number): void {
    task.deadline = setTimeout(() => this.interrupt(task, 'timeout'), timeLeftMs);
    task.ready = true;
    if (task.startWhenReady) {
      // Stopped while being set up (shutdown): it never runs, and gives its slot back.
      if (task.stopReason === undefined) void this.run(task);
      else this.release(task.userId);
    }
  }

  /**
   * Continues a task handed over by a clean stop, here: same id, its finished stages' outputs, its
   * progress from where it stood; it runs or queues like a new one. False when it cannot be (no
   * checkpoint or input, a kind or input this version no longer takes, out of time).
   */
  private async continueOrphan(orphan: UnfinishedTask): Promise<boolean> {
    const { taskId, userId, kind, input, checkpoint } = orphan;
    const parts = parseTaskId(taskId);
    if (!this.continueAfterRestart || !checkpoint || input === undefined || !parts) return false;
    const timeLeft = parts.startedAtMs + this.options.maxDurationMs - this.now();
    if (timeLeft <= 0) return false;
    let prepared: PreparedTask;
    try {
      prepared = this.options.catalog.prepare(kind, input);
    } catch (error) {
      this.options.logger.warn({ err: error, taskId }, 'a handed-over task cannot run in this version; it fails');
      return false;
    }
    const task = this.newTask({ id: taskId, userId, prepared, checkpoint });
    this.admit(task, this.slots.get(userId) ?? { running: 0, waiting: [] });
    this.ready(task, timeLeft);
    this.options.metrics.tasks.inc({ kind, outcome: 'continued' });
    return true;
  }

  private async run(task: Task): Promise<void> {
    const { provider } = this.options;
    const { signal } = task.controller;
    task.status = 'running';
    try {
      task.progress.report(0, 0);
      const work = task.prepared.run({
        taskId: task.id,
        signal,
        provider,
        progress: (stageIndex, fraction, message) => task.progress.report(stageIndex, fraction, message),
        finishedStages: [...task.finishedStages],
        stageFinished: (stageIndex, output) => {
          if (!task.finishing) task.finishedStages[stageIndex] = output;
        },
      });
      // A kind that ignores its signal cannot hold up the outcome.
      const result = await Promise.race([work, abortion(signal)]);
      if (task.stopReason) throw new ProviderError('aborted', 'the task was stopped');
      task.progress.report(task.prepared.stages.length - 1, 1);
      await task.progress.flush();
      await this.finish(task, 'completed', { result });
    } catch (error) {
      await this.finishAfterError(task, error);
    } finally {
      this.release(task.userId);
    }
  }

  private async finishAfterError(task: Task, error: unknown): Promise<void> {
    if (task.finishing) return;
    switch (task.stopReason) {
      case 'remote':
        // The instance that took the cancel request published `cancelled` already.
        task.finishing = true;
        await task.progress.stop();
        return this.settle(task, 'cancelled');
      case 'user':
        return this.finish(task, 'cancelled');
      case 'shutdown':
        if (this.continueAfterRestart && (await this.handOver(task))) return;
        return this.finish(task, 'failed', { error: SHUTDOWN_ERROR });
      case 'timeout':
        return this.finish(task, 'failed', {
          error: `the task took longer than its limit of ${this.options.maxDurationMs} ms`,
        });
      default: {
        const safe = error instanceof TaskError || error instanceof ProviderError || error instanceof AppError;
        this.options.logger.warn({ err: error, taskId: task.id, stage: task.progress.current.stage }, 'task failed');
        return this.finish(task, 'failed', { error: safe ? error.message : INTERNAL_ERROR });
      }
    }
  }

  /**
   * Leaves a task for the next start to continue: its latest progress, stored (clients whose hot
   * log is gone with this process read it from the store), and a journal checkpoint with its
   * finished stages' outputs. False when either could not be stored: then it must fail here.
   */
  private async handOver(task: Task): Promise<boolean> {
    task.finishing = true;
    await task.progress.stop();
    const { id: taskId, userId } = task;
    const progress = task.progress.current;
    const { started } = task.progress;
    // A task that never started has published no progress: it starts afresh, announcing its first stage then.
    const state: TaskCheckpoint = { finishedStages: task.finishedStages, ...(started ? { progress } : {}) };
    try {
      if (started) await this.publish(task.topic, 'task.progress', { taskId, ...progress }, true);
      await this.publish(TASK_JOURNAL_TOPIC, 'journal.checkpoint', { jobId: taskId, userId, state }, true);
    } catch (error) {
      this.options.logger.warn({ err: error, taskId }, 'task not handed over; it fails instead');
      task.finishing = false;
      return false;
    }
    task.finishedAt = this.now();
    clearTimeout(task.deadline);
    this.options.metrics.tasks.inc({ kind: task.prepared.kind, outcome: 'handed_over' });
    task.markDone();
    return true;
  }

  /** Publishes the terminal event (critical) after the last progress, and settles the task. */
  private async finish(
    task: Task,
    status: Exclude<TaskStatus, 'queued' | 'running'>,
    details: { result?: unknown; error?: string } = {},
  ): Promise<void> {
    task.finishing = true;
    // No progress after the outcome: what is pending is dropped, what is in flight goes first.
    await task.progress.stop();
    const taskId = task.id;
    const { stage } = task.progress.current;
    try {
      if (status === 'completed') {
        const result = details.result === undefined ? {} : { result: details.result };
        await this.publish(task.topic, 'task.completed', { taskId, ...result }, true);
      } else if (status === 'cancelled') {
        await this.publish(task.topic, 'task.cancelled', { taskId }, true);
      } else {
        await this.publish(task.topic, 'task.failed', { taskId, error: details.error ?? 'failed', stage }, true);
      }
      this.settle(task, status, details);
    } catch (error) {
      this.options.logger.error({ err: error, taskId, status }, 'the outcome of a task was not published');
      const message = error instanceof Error ? error.message : String(error);
      // A result the event path refuses (too deep, not JSON) is the kind's fault, not the store's.
      const reason =
        error instanceof InvalidEventError
          ? `the task's result cannot be sent: ${message}`
          : `the outcome could not be stored: ${message}`;
      this.settle(task, 'failed', { error: reason });
      if (status !== 'failed') {
        await this.publish(task.topic, 'task.failed', { taskId, error: reason, stage }, true).catch(() => undefined);
      }
    }
  }

  private settle(
    task: Task,
    status: Exclude<TaskStatus, 'queued' | 'running'>,
    details: { result?: unknown; error?: string } = {},
  ): void {
    task.status = status;
    if (details.result !== undefined) task.result = details.result;
    if (details.error !== undefined) task.error = details.error;
    task.finishedAt = this.now();
    clearTimeout(task.deadline);
    this.options.metrics.tasks.inc({ kind: task.prepared.kind, outcome: status });
    task.markDone();
  }

  /** Another instance took a cancel request for a task and published its `cancelled`. */
  private onRemoteCancel(taskId: string, userId: string): void {
    const task = this.tasks.get(taskId);
    if (task && task.userId === userId) this.interrupt(task, 'remote');
  }

  private interrupt(task: Task, reason: StopReason): void {
    if (task.finishing || task.stopReason !== undefined || isTerminal(task.status)) return;
    task.stopReason = reason;
    if (task.status === 'running') {
      task.controller.abort();
      return;
    }
    // Queued: it leaves the queue and never runs.
    const slots = this.slots.get(task.userId);
    if (slots) slots.waiting = slots.waiting.filter((waiting) => waiting !== task);
    void this.finishAfterError(task, undefined);
  }

  /** Frees a running slot of `userId` and starts the next queued task, if any. */
  private release(userId: string): void {
    const slots = this.slots.get(userId);
    if (!slots) return;
    slots.running = Math.max(0, slots.running - 1);
    const next = this.stopping ? undefined : slots.waiting.shift();
    if (next) {
      slots.running++;
      // One still being journalled starts as soon as it is.
      if (next.ready) void this.run(next);
      else next.startWhenReady = true;
    }
    if (slots.running === 0 && slots.waiting.length === 0) this.slots.delete(userId);
  }

  private failOrphan(userId: string, task: { taskId: string; kind: string; stage?: string }): Promise<void> {
    const { taskId, kind, stage } = task;
    return this.tasks.repairOnce(taskId, async () => {
      const at = stage ? { stage } : {};
      await this.publish(userTopic(userId), 'task.failed', { taskId, error: RESTART_ERROR, ...at }, true);
      this.options.metrics.tasks.inc({ kind, outcome: 'interrupted' });
    });
  }

  private publish(topic: string, type: string, payload: unknown, critical: boolean): Promise<EventRecord> {
    return this.options.publisher.publish({ topic, type, payload, critical });
  }
}

function viewOf(task: Task): TaskView {
  const { stage, stageIndex, stageCount, percent, message } = task.progress.current;
  const view: TaskView = {
    taskId: task.id,
    kind: task.prepared.kind,
    status: task.status,
    stage,
    stageIndex,
    stageCount,
    percent: task.status === 'completed' ? 100 : percent,
  };
  if (message !== undefined) view.message = message;
  if (task.status === 'completed' && task.result !== undefined) view.result = task.result;
  if (task.status === 'failed' && task.error !== undefined) view.error = task.error;
  return view;
}

/** Rejects once `signal` aborts (never resolves). */
function abortion(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    const fail = () => reject(new ProviderError('aborted', 'the task was stopped'));
    if (signal.aborted) fail();
    else signal.addEventListener('abort', fail, { once: true });
  });
}
