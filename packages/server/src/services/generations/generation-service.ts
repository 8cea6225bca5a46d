import type { GenerationView } from '@infinitescribe/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type { EventBus } from '../../adapters/bus/event-bus.js';
import type { ConnectionLeases } from '../../adapters/leases/connection-leases.js';
import { AppError } from '../../core/errors.js';
import type { EventPublisher } from '../events/event-publisher.js';
import type { Metrics } from '../../adapters/observability/metrics.js';
import type { EventStore } from '../../adapters/store/event-store.js';
import type { AIProvider, ChatMessage } from '../../adapters/ai/ai-provider.js';
import { JobRunner } from '../jobs/job-runner.js';
import { GenerationLog, type GenerationCheckpoint, type GenerationRequestRecord } from './generation-log.js';
import { generationJobKind, type GenerationWork } from './generation-job-kind.js';

export { INTERNAL_ERROR, RESTART_ERROR, SHUTDOWN_ERROR } from './generation-job-kind.js';

/** Input of {@link GenerationService.create}. */
export interface GenerationRequest {
  /** The conversation, oldest first, with at least one `user` message. */
  messages: ChatMessage[];
  system?: string;
  temperature?: number;
  /** One of {@link GenerationService.models}; default the provider's. */
  model?: string;
  maxTokens?: number;
  documentId?: string;
}

export type { GenerationView };

/** Options of {@link GenerationService}. */
export interface GenerationServiceOptions {
  provider: AIProvider;
  /** Models a request may name (AI_MODEL and AI_MODELS); default the provider's own. */
  models?: readonly string[];
  publisher: EventPublisher;
  bus: EventBus;
  store: EventStore;
  metrics: Metrics;
  logger: FastifyBaseLogger;
  instanceId: string;
  /** AI_FLUSH_MS. */
  flushMs: number;
  maxConcurrentPerUser: number;
  /** Generations one user may start per window (AI_CREATE_RATE_MAX per AI_CREATE_RATE_WINDOW_MS). */
  createRate?: { max: number; windowMs: number };
  /**
   * Counts running generations per user across the cluster (leases in Redis), so
   * `maxConcurrentPerUser` holds for the cluster and not per instance. Without it, per instance.
   */
  leases?: ConnectionLeases;
  /** How often the leases of running generations are renewed (a third of their TTL). */
  leaseRefreshMs?: number;
  defaultMaxTokens: number;
  /** A generation running longer fails (AI_TOTAL_TIMEOUT_MS). */
  maxDurationMs: number;
  /**
   * No other instance can be running generations on this log, so one not running here and not
   * finished is an orphan. Default: true with the in-process bus (embedded mode).
   */
  singleInstance?: boolean;
  /**
   * A clean stop hands running generations over (checkpoint) instead of failing them, and a start
   * continues the ones handed over that it may take: all in embedded mode, its own (same
   * INSTANCE_ID) in a cluster. Only true where the next start can find them. Default: `singleInstance`.
   */
  continueAfterRestart?: boolean;
  recoveryLookbackMs?: number;
  now?: () => number;
}

/**
 * Runs generations server-side, independent of any connection: a generation streams from the
 * provider into coalesced `ai.generation.delta` events on `user:<id>` and ends with one critical
 * `completed`, `failed` or `cancelled`. The lifecycle (limits, journal, cancel, hand-over,
 * recovery) is the job runner's; this is the generation kind (generation-job-kind.ts) with the
 * request checks of the API.
 */
export class GenerationService {
  private readonly runner: JobRunner<GenerationRequestRecord, GenerationWork, GenerationCheckpoint, GenerationView>;

  constructor(private readonly options: GenerationServiceOptions) {
    const now = options.now ?? Date.now;
    const kind = generationJobKind({
      provider: options.provider,
      log: new GenerationLog({ bus: options.bus, store: options.store }),
      publish: (topic, type, payload, critical) => options.publisher.publish({ topic, type, payload, critical }),
      metrics: options.metrics,
      logger: options.logger,
      flushMs: options.flushMs,
      now,
    });
    const { maxConcurrentPerUser, leases, leaseRefreshMs, createRate, singleInstance, continueAfterRestart } = options;
    this.runner = new JobRunner(kind, {
      publisher: options.publisher,
      bus: options.bus,
      logger: options.logger,
      instanceId: options.instanceId,
      maxRunningPerUser: maxConcurrentPerUser,
      maxQueuedPerUser: 0,
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

  get provider(): AIProvider {
    return this.options.provider;
  }

  /** The models a request may name. */
  get models(): readonly string[] {
    return this.options.models ?? [this.options.provider.info.model];
  }

  /**
   * Recovery at start: every journalled generation without an outcome that cannot be running
   * anywhere is continued where its checkpoint left it, when it was handed over by a clean stop and
   * has time left; any other gets `ai.generation.failed` {@link RESTART_ERROR} with the text the log
   * still has. Store trouble is logged, not fatal.
   */
  start(): Promise<void> {
    return this.runner.start();
  }

  /**
   * Starts a generation and resolves with its id once it is journalled in the store (so GET and
   * cancel work at once, from any instance) and `started` is out.
   * @throws AppError `invalid_request` for a model not allowed, `rate_limited` past the per-user
   * limit, `shutting_down`, `store_unavailable`.
   */
  async create(userId: string, request: GenerationRequest): Promise<string> {
    if (request.model !== undefined && !this.models.includes(request.model)) {
      throw new AppError('invalid_request', `model must be one of ${this.models.join(', ')}`);
    }
    const { maxTokens = this.options.defaultMaxTokens, ...fields } = request;
    return this.runner.create(userId, { ...fields, maxTokens });
  }

  /**
   * Cancels a generation of `userId`: aborts the provider request and publishes `cancelled`.
   * Finished ones are left as they are; one on another instance is cancelled through it.
   * @throws AppError `not_found` for an unknown id or another user's generation.
   */
  cancel(userId: string, generationId: string): Promise<void> {
    return this.runner.cancel(userId, generationId);
  }

  /**
   * Status, text so far and seq of its last delta of a generation of `userId`.
   * @throws AppError `not_found` for an unknown id or another user's generation.
   */
  get(userId: string, generationId: string): Promise<GenerationView> {
    return this.runner.get(userId, generationId);
  }

  /**
   * Stops every running generation: hands it over with a checkpoint for the next start to continue
   * (see {@link GenerationServiceOptions.continueAfterRestart}), or else ends it with `failed`
   * {@link SHUTDOWN_ERROR}. Call before the store closes.
   */
  stop(): Promise<void> {
    return this.runner.stop();
  }
}
