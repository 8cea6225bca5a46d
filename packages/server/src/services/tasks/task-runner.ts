import type { TaskView } from '@infinitescribe/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type { AIProvider } from '../../adapters/ai/ai-provider.js';
import type { EventBus } from '../../adapters/bus/event-bus.js';
import type { ConnectionLeases } from '../../adapters/leases/connection-leases.js';
import type { EventPublisher } from '../events/event-publisher.js';
import type { Metrics } from '../../adapters/observability/metrics.js';
import type { EventStore } from '../../adapters/store/event-store.js';
import { JobRunner } from '../jobs/job-runner.js';
import type { TaskCatalog } from './task-catalog.js';
import type { PreparedTask, TaskKindInfo } from './task-kind.js';
import { TaskLog, type TaskCheckpoint } from './task-log.js';
import { taskJobKind, type TaskWork } from './task-job-kind.js';

export { INTERNAL_ERROR, RESTART_ERROR, SHUTDOWN_ERROR } from './task-job-kind.js';

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
  /**
   * Counts running tasks per user across the cluster (leases in Redis), so `maxConcurrentPerUser`
   * holds for the cluster and not per instance, as for generations. Without it, per instance.
   */
  leases?: ConnectionLeases;
  /** How often the leases of running tasks are renewed (a third of their TTL). */
  leaseRefreshMs?: number;
  /** Tasks past the concurrency limit wait, up to this many per user (on this instance); more is a 429. */
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

/**
 * Runs multi-stage tasks server-side, independent of any connection: each publishes throttled,
 * monotonic `task.progress` on `user:<id>` and ends with one critical `task.completed`,
 * `task.failed` (with the stage) or `task.cancelled`. Past the per-user concurrency limit tasks
 * wait `queued`. The lifecycle is the job runner's; this is the task kind (task-job-kind.ts) with
 * the catalogue.
 */
export class TaskRunner {
  private readonly runner: JobRunner<PreparedTask, TaskWork, TaskCheckpoint, TaskView>;

  constructor(private readonly options: TaskRunnerOptions) {
    const now = options.now ?? Date.now;
    const kind = taskJobKind({
      catalog: options.catalog,
      provider: options.provider,
      log: new TaskLog({ bus: options.bus, store: options.store }),
      publish: (topic, type, payload, critical) => options.publisher.publish({ topic, type, payload, critical }),
      metrics: options.metrics,
      logger: options.logger,
      progressIntervalMs: options.progressIntervalMs,
      now,
    });
    const { leases, leaseRefreshMs, createRate, singleInstance, continueAfterRestart } = options;
    this.runner = new JobRunner(kind, {
      publisher: options.publisher,
      bus: options.bus,
      logger: options.logger,
      instanceId: options.instanceId,
      maxRunningPerUser: options.maxConcurrentPerUser,
      maxQueuedPerUser: options.maxQueuedPerUser,
      maxDurationMs: options.maxDurationMs,
      now,
      ...(createRate ? { createRate } : {}),
      ...(leases ? { leases } : {}),
      ...(leaseRefreshMs !== undefined ? { leaseRefreshMs } : {}),
      ...(singleInstance !== undefined ? { singleInstance } : {}),
      ...(continueAfterRestart !== undefined ? { continueAfterRestart } : {}),
      ...(options.recoveryLookbackMs !== undefined ? { recoveryLookbackMs: options.recoveryLookbackMs } : {}),
    });
  }

  /** `GET /api/tasks/kinds`. */
  kinds(): TaskKindInfo[] {
    return this.options.catalog.list();
  }

  /**
   * Recovery at start: every journalled task without an outcome that cannot be running anywhere is
   * continued after its last finished stage, when a clean stop handed it over and it has time left;
   * any other gets `task.failed` {@link RESTART_ERROR} with its last stored stage.
   */
  start(): Promise<void> {
    return this.runner.start();
  }

  /**
   * Creates a task of `kind` and resolves with its id once it is journalled (so GET and cancel
   * work at once, from any instance); it runs at once or waits `queued` behind the user's others.
   * @throws AppError `invalid_request` (unknown kind, bad input), `rate_limited` (queue full),
   * `shutting_down`, `store_unavailable`.
   */
  async create(userId: string, kind: string, input: unknown): Promise<string> {
    return this.runner.create(userId, this.options.catalog.prepare(kind, input));
  }

  /**
   * Cancels a task of `userId`: a queued one leaves the queue, a running one is aborted; either
   * way `task.cancelled` is published. Finished ones are left as they are.
   * @throws AppError `not_found` for an unknown id or another user's task.
   */
  cancel(userId: string, taskId: string): Promise<void> {
    return this.runner.cancel(userId, taskId);
  }

  /**
   * Where a task of `userId` stands, from this instance's memory or the log.
   * @throws AppError `not_found` for an unknown id or another user's task.
   */
  get(userId: string, taskId: string): Promise<TaskView> {
    return this.runner.get(userId, taskId);
  }

  /**
   * Stops every queued and running task: hands it over with a checkpoint for the next start to
   * continue (see {@link TaskRunnerOptions.continueAfterRestart}), or else ends it with `failed`
   * {@link SHUTDOWN_ERROR}. Call before the store closes.
   */
  stop(): Promise<void> {
    return this.runner.stop();
  }
}
