import { userTopic } from '@infinitescribe/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type { EventBus, Unsubscribe } from '../bus/event-bus.js';
import { AppError } from '../errors.js';
import type { EventPublisher } from '../events/event-publisher.js';
import type { EventRecord } from '../events/event-record.js';
import type { Metrics } from '../observability/metrics.js';
import type { EventStore } from '../store/event-store.js';
import { ProviderError, toProviderError, type AIProvider, type CompletionUsage } from './ai-provider.js';
import { DeltaCoalescer } from './delta-coalescer.js';
import { instanceTagOf, newGenerationId, parseGenerationId } from './generation-id.js';
import { GENERATION_JOURNAL_TOPIC, GenerationLog, journalKey, type GenerationStatus } from './generation-log.js';

/** `failed.error` of a generation cut by a clean shutdown of its instance. */
export const SHUTDOWN_ERROR = 'server shut down while generating';
/** `failed.error` of a generation found orphaned: its instance stopped without finishing it. */
export const RESTART_ERROR = 'server restarted while generating';

/** Finished generations stay in memory this long (fast GET with their text), at most {@link MAX_FINISHED}. */
const FINISHED_TTL_MS = 10 * 60_000;
const MAX_FINISHED = 10_000;
/** A generation with no outcome this long after its time limit is dead wherever it ran. */
const ORPHAN_GRACE_MS = 60_000;
/** How far back a starting instance looks for generations left running. */
const DEFAULT_RECOVERY_LOOKBACK_MS = 24 * 3_600_000;
/** How long a cancel waits for a local generation to publish `cancelled`; shutdown, for all. */
const SETTLE_WAIT_MS = 5_000;

/** Input of {@link GenerationService.create}. */
export interface GenerationRequest {
  prompt: string;
  maxTokens?: number;
  documentId?: string;
}

/** Answer of GET /api/ai/generations/:id. */
export interface GenerationView {
  generationId: string;
  status: GenerationStatus;
  /** Text so far (all of it once completed). */
  text: string;
  /** Why it failed. */
  error?: string;
}

/** Options of {@link GenerationService}. */
export interface GenerationServiceOptions {
  provider: AIProvider;
  publisher: EventPublisher;
  bus: EventBus;
  store: EventStore;
  metrics: Metrics;
  logger: FastifyBaseLogger;
  instanceId: string;
  /** AI_FLUSH_MS. */
  flushMs: number;
  maxConcurrentPerUser: number;
  defaultMaxTokens: number;
  /** A generation running longer fails (AI_TOTAL_TIMEOUT_MS). */
  maxDurationMs: number;
  /**
   * No other instance can be running generations on this log, so one not running here and not
   * finished is an orphan. Default: true with the in-process bus (embedded mode).
   */
  singleInstance?: boolean;
  recoveryLookbackMs?: number;
  now?: () => number;
}

type StopReason = 'user' | 'remote' | 'shutdown' | 'timeout';

interface Generation {
  id: string;
  userId: string;
  topic: string;
  prompt: string;
  maxTokens: number;
  createdAt: number;
  status: GenerationStatus;
  /** Text of the deltas published so far. */
  emitted: string;
  error?: string;
  nextSeq: number;
  lastDeltaAt: number;
  stopReason?: StopReason;
  /** A terminal event is being published: nothing else may be. */
  finishing: boolean;
  controller: AbortController;
  coalescer?: DeltaCoalescer;
  done: Promise<void>;
  finishedAt?: number;
}

/**
 * Runs generations server-side, independent of any connection: a generation streams from the
 * provider into coalesced `ai.generation.delta` events on `user:<id>` and ends with one critical
 * `completed`, `failed` or `cancelled`. State lives in the event log (starts and outcomes in the
 * store, deltas in the hot log), so any instance can answer for any generation; the in-memory
 * registry only serves this instance's own generations faster and holds their abort handles.
 */
export class GenerationService {
  private readonly generations = new Map<string, Generation>();
  private readonly runningByUser = new Map<string, number>();
  private readonly repairing = new Set<string>();
  private readonly log: GenerationLog;
  private readonly instanceTag: string;
  private readonly singleInstance: boolean;
  private readonly now: () => number;
  private stopping = false;

  constructor(private readonly options: GenerationServiceOptions) {
    this.log = new GenerationLog({ bus: options.bus, store: options.store });
    this.instanceTag = instanceTagOf(options.instanceId);
    this.singleInstance = options.singleInstance ?? options.bus.kind === 'memory';
    this.now = options.now ?? Date.now;
  }

  get provider(): AIProvider {
    return this.options.provider;
  }

  /**
   * Recovery at start: every journalled generation without an outcome that cannot be running
   * anywhere gets `ai.generation.failed` {@link RESTART_ERROR}. Store trouble is logged, not fatal.
   */
  async start(): Promise<void> {
    const { logger } = this.options;
    try {
      const lookback = this.options.recoveryLookbackMs ?? DEFAULT_RECOVERY_LOOKBACK_MS;
      const unfinished = await this.log.unfinished(this.now() - lookback);
      let failed = 0;
      for (const { generationId, userId } of unfinished) {
        if (this.generations.has(generationId) || !this.isOrphan(generationId)) continue;
        await this.failOrphan(userId, generationId);
        failed++;
      }
      if (failed > 0) logger.warn({ failed }, 'generations left running by a previous process were marked failed');
    } catch (error) {
      logger.warn({ err: error }, 'could not check for generations left running; they fail when next read');
    }
  }

  /**
   * Starts a generation and resolves with its id once `started` is stored (so GET and cancel work
   * at once, from any instance).
   * @throws AppError `rate_limited` past the per-user limit, `shutting_down`, `store_unavailable`.
   */
  async create(userId: string, request: GenerationRequest): Promise<string> {
    if (this.stopping) throw new AppError('shutting_down', 'the server is shutting down');
    const { maxConcurrentPerUser } = this.options;
    const running = this.runningByUser.get(userId) ?? 0;
    if (running >= maxConcurrentPerUser) {
      throw new AppError(
        'rate_limited',
        `at most ${maxConcurrentPerUser} generations may run at once per user; wait for one to end or cancel it`,
        { headers: { 'retry-after': '1' } },
      );
    }
    this.runningByUser.set(userId, running + 1);
    this.prune();
    const now = this.now();
    const generation: Generation = {
      id: newGenerationId(this.instanceTag, now),
      userId,
      topic: userTopic(userId),
      prompt: request.prompt,
      maxTokens: request.maxTokens ?? this.options.defaultMaxTokens,
      createdAt: now,
      status: 'running',
      emitted: '',
      nextSeq: 0,
      lastDeltaAt: now,
      finishing: false,
      controller: new AbortController(),
      done: Promise.resolve(),
    };
    this.generations.set(generation.id, generation);
    try {
      const key = journalKey(generation.id, userId);
      if (key === undefined) {
        this.options.logger.warn({ userId }, 'user id too long for the generation journal; no recovery after a crash');
      } else {
        await this.publish(GENERATION_JOURNAL_TOPIC, 'ai.generation.started', { generationId: key }, true);
      }
      const started = request.documentId ? { documentId: request.documentId } : {};
      await this.publish(generation.topic, 'ai.generation.started', { generationId: generation.id, ...started }, true);
    } catch (error) {
      this.generations.delete(generation.id);
      this.release(userId);
      throw error;
    }
    generation.done = this.run(generation);
    return generation.id;
  }

  /**
   * Cancels a generation of `userId`: aborts the provider request and publishes `cancelled`.
   * Finished ones are left as they are. One running on another instance is cancelled by
   * publishing `cancelled`, which that instance hears on the bus and obeys.
   * @throws AppError `not_found` for an unknown id or another user's generation.
   */
  async cancel(userId: string, generationId: string): Promise<void> {
    const local = this.generations.get(generationId);
    if (local) {
      if (local.userId !== userId) throw notFound(generationId);
      this.interrupt(local, 'user');
      await withTimeout(local.done, SETTLE_WAIT_MS);
      return;
    }
    const logged = await this.log.find(userId, generationId);
    if (!logged) throw notFound(generationId);
    if (logged.status !== 'running') return;
    await this.publish(userTopic(userId), 'ai.generation.cancelled', { generationId }, true);
    this.options.metrics.aiGenerations.inc({ outcome: 'cancelled' });
  }

  /**
   * Status and text so far of a generation of `userId`, from this instance's memory or the log.
   * @throws AppError `not_found` for an unknown id or another user's generation.
   */
  async get(userId: string, generationId: string): Promise<GenerationView> {
    const local = this.generations.get(generationId);
    if (local) {
      if (local.userId !== userId) throw notFound(generationId);
      return view(local.id, local.status, local.emitted, local.error);
    }
    const logged = await this.log.find(userId, generationId);
    if (!logged) throw notFound(generationId);
    if (logged.status === 'running' && this.isOrphan(generationId)) {
      await this.failOrphan(userId, generationId);
      return view(generationId, 'failed', logged.text, RESTART_ERROR);
    }
    return view(generationId, logged.status, logged.text, logged.error);
  }

  /** Ends every running generation with `failed` {@link SHUTDOWN_ERROR}; call before the store closes. */
  async stop(): Promise<void> {
    this.stopping = true;
    const running = [...this.generations.values()].filter((generation) => generation.status === 'running');
    for (const generation of running) this.interrupt(generation, 'shutdown');
    await withTimeout(Promise.allSettled(running.map((generation) => generation.done)), SETTLE_WAIT_MS);
  }

  private async run(generation: Generation): Promise<void> {
    const { provider, bus, flushMs, maxDurationMs, logger } = this.options;
    const coalescer = new DeltaCoalescer({
      flushMs,
      now: this.now,
      emit: (text) => this.publishDelta(generation, text),
      onEmitError: (error) =>
        logger.warn({ err: error, generationId: generation.id }, 'delta not published; its text goes with the next'),
    });
    generation.coalescer = coalescer;
    const deadline = setTimeout(() => this.interrupt(generation, 'timeout'), maxDurationMs);
    let unsubscribe: Unsubscribe | undefined;
    try {
      // A `cancelled` published by another instance (where the cancel request landed) stops it here.
      unsubscribe = await bus.subscribe(generation.topic, (event) => this.onOwnerEvent(generation, event));
      let usage: CompletionUsage | undefined;
      const stream = provider.stream({
        prompt: generation.prompt,
        maxTokens: generation.maxTokens,
        signal: generation.controller.signal,
      });
      for await (const chunk of stream) {
        if (generation.stopReason) break;
        if (chunk.type === 'delta') coalescer.push(chunk.text);
        else usage = chunk.usage;
      }
      if (generation.stopReason) throw new ProviderError('aborted', 'the generation was aborted');
      await coalescer.drain();
      await this.finish(generation, 'completed', { usage });
    } catch (error) {
      await this.finishAfterError(generation, error);
    } finally {
      clearTimeout(deadline);
      await unsubscribe?.().catch(() => undefined);
      this.release(generation.userId);
    }
  }

  private async finishAfterError(generation: Generation, error: unknown): Promise<void> {
    const { coalescer } = generation;
    if (generation.finishing) return;
    if (generation.stopReason === 'remote') {
      // The instance that took the cancel request published `cancelled` already.
      coalescer?.stop();
      generation.status = 'cancelled';
      generation.finishedAt = this.now();
      this.options.metrics.aiGenerations.inc({ outcome: 'cancelled' });
      return;
    }
    try {
      // What was generated before the end goes out, so the deltas match the text so far.
      await coalescer?.drain();
    } catch (drainError) {
      this.options.logger.warn({ err: drainError, generationId: generation.id }, 'last delta not published');
    }
    switch (generation.stopReason) {
      case 'user':
        return this.finish(generation, 'cancelled');
      case 'shutdown':
        return this.finish(generation, 'failed', { error: SHUTDOWN_ERROR });
      case 'timeout':
        return this.finish(generation, 'failed', {
          error: `the generation took longer than its limit of ${this.options.maxDurationMs} ms`,
        });
      default: {
        const problem = error instanceof AppError ? error : toProviderError(error);
        this.options.logger.warn({ err: error, generationId: generation.id }, 'generation failed');
        return this.finish(generation, 'failed', { error: problem.message });
      }
    }
  }

  /** Publishes the terminal event (critical) and settles the registry entry. */
  private async finish(
    generation: Generation,
    status: Exclude<GenerationStatus, 'running'>,
    details: { usage?: CompletionUsage; error?: string } = {},
  ): Promise<void> {
    generation.finishing = true;
    generation.coalescer?.stop();
    const generationId = generation.id;
    try {
      if (status === 'completed') {
        const usage = details.usage && Object.keys(details.usage).length > 0 ? { usage: details.usage } : {};
        await this.publish(
          generation.topic,
          'ai.generation.completed',
          { generationId, text: generation.emitted, ...usage },
          true,
        );
      } else if (status === 'cancelled') {
        await this.publish(generation.topic, 'ai.generation.cancelled', { generationId }, true);
      } else {
        await this.publish(
          generation.topic,
          'ai.generation.failed',
          { generationId, error: details.error ?? 'failed' },
          true,
        );
      }
      this.settle(generation, status, details.error);
    } catch (error) {
      this.options.logger.error({ err: error, generationId, status }, 'the outcome of a generation was not stored');
      const reason = `the outcome could not be stored: ${error instanceof Error ? error.message : String(error)}`;
      this.settle(generation, 'failed', reason);
      if (status !== 'failed') {
        await this.publish(generation.topic, 'ai.generation.failed', { generationId, error: reason }, true).catch(
          () => undefined,
        );
      }
    }
  }

  private settle(generation: Generation, status: Exclude<GenerationStatus, 'running'>, error?: string): void {
    generation.status = status;
    if (error !== undefined) generation.error = error;
    generation.finishedAt = this.now();
    this.options.metrics.aiGenerations.inc({ outcome: status });
  }

  private async publishDelta(generation: Generation, text: string): Promise<void> {
    const seq = generation.nextSeq;
    await this.publish(generation.topic, 'ai.generation.delta', { generationId: generation.id, seq, text }, false);
    generation.nextSeq = seq + 1;
    generation.emitted += text;
    const now = this.now();
    const { metrics } = this.options;
    if (seq === 0) metrics.aiTimeToFirstToken.observe((now - generation.createdAt) / 1000);
    else metrics.aiInterDeltaGap.observe((now - generation.lastDeltaAt) / 1000);
    generation.lastDeltaAt = now;
  }

  private onOwnerEvent(generation: Generation, event: EventRecord): void {
    if (event.type !== 'ai.generation.cancelled') return;
    if ((event.payload as { generationId?: unknown }).generationId !== generation.id) return;
    if (generation.finishing || generation.stopReason !== undefined) return;
    generation.stopReason = 'remote';
    generation.coalescer?.stop();
    generation.controller.abort();
  }

  private interrupt(generation: Generation, reason: Exclude<StopReason, 'remote'>): void {
    if (generation.finishing || generation.stopReason !== undefined || generation.status !== 'running') return;
    generation.stopReason = reason;
    generation.controller.abort();
  }

  /** Whether a generation not running here, without outcome, can no longer be running anywhere. */
  private isOrphan(generationId: string): boolean {
    const parts = parseGenerationId(generationId);
    if (!parts) return false;
    if (this.singleInstance || parts.instanceTag === this.instanceTag) return true;
    return this.now() - parts.startedAtMs > this.options.maxDurationMs + ORPHAN_GRACE_MS;
  }

  private async failOrphan(userId: string, generationId: string): Promise<void> {
    if (this.repairing.has(generationId)) return;
    this.repairing.add(generationId);
    try {
      await this.publish(userTopic(userId), 'ai.generation.failed', { generationId, error: RESTART_ERROR }, true);
      this.options.metrics.aiGenerations.inc({ outcome: 'interrupted' });
    } finally {
      this.repairing.delete(generationId);
    }
  }

  private publish(topic: string, type: string, payload: unknown, critical: boolean): Promise<EventRecord> {
    return this.options.publisher.publish({ topic, type, payload, critical });
  }

  private release(userId: string): void {
    const running = (this.runningByUser.get(userId) ?? 1) - 1;
    if (running > 0) this.runningByUser.set(userId, running);
    else this.runningByUser.delete(userId);
  }

  /** Forgets finished generations past their time in memory (the log still has them). */
  private prune(): void {
    const cutoff = this.now() - FINISHED_TTL_MS;
    let excess = this.generations.size - MAX_FINISHED;
    for (const [id, generation] of this.generations) {
      if (generation.finishedAt === undefined) continue;
      if (generation.finishedAt < cutoff || excess > 0) {
        this.generations.delete(id);
        excess--;
      }
    }
  }
}

function view(generationId: string, status: GenerationStatus, text: string, error?: string): GenerationView {
  return error !== undefined && status === 'failed'
    ? { generationId, status, text, error }
    : { generationId, status, text };
}

function notFound(generationId: string): AppError {
  return new AppError('not_found', `no generation ${generationId}`);
}

async function withTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    promise,
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}
