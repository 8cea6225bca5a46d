import { userTopic } from '@infinitescribe/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type { EventBus } from '../../adapters/bus/event-bus.js';
import type { ConnectionLease, ConnectionLeases } from '../../adapters/leases/connection-leases.js';
import { AppError } from '../../core/errors.js';
import type { EventPublisher } from '../events/event-publisher.js';
import type { EventRecord } from '../../core/event-record.js';
import type { Metrics } from '../../adapters/observability/metrics.js';
import type { EventStore } from '../../adapters/store/event-store.js';
import {
  ProviderError,
  toProviderError,
  type AIProvider,
  type ChatMessage,
  type CompletionUsage,
} from '../../adapters/ai/ai-provider.js';
import { DeltaCoalescer } from './delta-coalescer.js';
import { JobCancels } from '../jobs/job-cancels.js';
import { GENERATION_JOURNAL_TOPIC } from '../../core/journal-events.js';
import { newGenerationId, parseGenerationId } from '../../core/job-id.js';
import { DEFAULT_RECOVERY_LOOKBACK_MS, JobRegistry, SETTLE_WAIT_MS, settleWithin } from '../jobs/job-registry.js';
import {
  GenerationLog,
  type GenerationCheckpoint,
  type GenerationRequestRecord,
  type GenerationStatus,
  type UnfinishedGeneration,
} from './generation-log.js';

/** `failed.error` of a generation cut by a clean shutdown of its instance. */
export const SHUTDOWN_ERROR = 'server shut down while generating';
/** `failed.error` of a generation found orphaned: its instance stopped without finishing it. */
export const RESTART_ERROR = 'server restarted while generating';

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

/** `unannounced`: its journal entry or `started` could not be published, so the request failed. */
type StopReason = 'user' | 'remote' | 'shutdown' | 'timeout' | 'unannounced';

interface Generation {
  id: string;
  userId: string;
  topic: string;
  request: GenerationRequestRecord;
  createdAt: number;
  status: GenerationStatus;
  /** Text of the deltas published so far. */
  emitted: string;
  /** Text generated before a restart, which the provider continues (empty for a new generation). */
  continuation: string;
  /** Provider tokens consumed so far, including before a restart. */
  tokens: number;
  /** Of {@link tokens}, those before the restart (the provider's usage counts only the rest). */
  earlierTokens: number;
  error?: string;
  nextSeq: number;
  lastDeltaAt: number;
  /** Settles once `started` is live on the bus: deltas may follow it (rejects if it could not go out). */
  announced: Promise<void>;
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
  private readonly generations: JobRegistry<Generation>;
  private readonly runningByUser = new Map<string, number>();
  private readonly log: GenerationLog;
  private readonly cancels: JobCancels;
  private readonly continueAfterRestart: boolean;
  private readonly now: () => number;
  private stopping = false;
  private leaseTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: GenerationServiceOptions) {
    this.log = new GenerationLog({ bus: options.bus, store: options.store });
    this.now = options.now ?? Date.now;
    const singleInstance = options.singleInstance ?? options.bus.kind === 'memory';
    this.generations = new JobRegistry({
      instanceId: options.instanceId,
      singleInstance,
      maxDurationMs: options.maxDurationMs,
      parseId: parseGenerationId,
      noun: 'generation',
      ...(options.createRate ? { createRate: options.createRate } : {}),
      now: this.now,
    });
    this.continueAfterRestart = options.continueAfterRestart ?? singleInstance;
    this.cancels = new JobCancels({
      bus: options.bus,
      publisher: options.publisher,
      logger: options.logger,
      onCancel: (jobId, userId) => this.onRemoteCancel(jobId, userId),
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
  async start(): Promise<void> {
    const { logger, leases, leaseRefreshMs } = this.options;
    if (leases && leaseRefreshMs !== undefined) {
      // Leases outlive a killed instance only by their TTL: renewed while their generation runs.
      this.leaseTimer = setInterval(() => void leases.refresh(this.runningLeases()), leaseRefreshMs);
      this.leaseTimer.unref();
    }
    await this.cancels.listen();
    try {
      const lookback = this.options.recoveryLookbackMs ?? DEFAULT_RECOVERY_LOOKBACK_MS;
      const unfinished = await this.log.unfinished(this.now() - lookback);
      let failed = 0;
      let continued = 0;
      for (const orphan of unfinished) {
        if (this.generations.has(orphan.generationId) || !this.generations.isOrphan(orphan.generationId)) continue;
        if (this.continueOrphan(orphan)) continued++;
        else {
          await this.failOrphan(orphan.userId, orphan.generationId, orphan.checkpoint?.text);
          failed++;
        }
      }
      if (continued > 0) logger.info({ continued }, 'generations handed over by the previous process continue');
      if (failed > 0) logger.warn({ failed }, 'generations left running by a previous process were marked failed');
    } catch (error) {
      logger.warn({ err: error }, 'could not check for generations left running; they fail when next read');
    }
  }

  /**
   * Starts a generation and resolves with its id once it is journalled in the store (so GET and
   * cancel work at once, from any instance) and `started` is out.
   * @throws AppError `invalid_request` for a model not allowed, `rate_limited` past the per-user
   * limit, `shutting_down`, `store_unavailable`.
   */
  async create(userId: string, request: GenerationRequest): Promise<string> {
    if (this.stopping) throw new AppError('shutting_down', 'the server is shutting down');
    if (request.model !== undefined && !this.models.includes(request.model)) {
      throw new AppError('invalid_request', `model must be one of ${this.models.join(', ')}`);
    }
    const { maxConcurrentPerUser, leases } = this.options;
    this.generations.admitCreation(userId);
    const running = this.runningByUser.get(userId) ?? 0;
    const tooMany = () =>
      new AppError(
        'rate_limited',
        `at most ${maxConcurrentPerUser} generations may run at once per user; wait for one to end or cancel it`,
        { headers: { 'retry-after': '1' } },
      );
    if (running >= maxConcurrentPerUser) throw tooMany();
    this.runningByUser.set(userId, running + 1);
    const now = this.now();
    const id = newGenerationId(this.generations.instanceTag, now);
    // Then the cluster-wide count: two instances admitting the same user cannot both take the last slot.
    const lease = await leases?.acquire({ userId, connectionId: id }, maxConcurrentPerUser);
    if (lease && !lease.granted) {
      this.release(userId);
      throw tooMany();
    }
    const { maxTokens = this.options.defaultMaxTokens, ...fields } = request;
    const generation = this.register({ id, userId, request: { ...fields, maxTokens }, createdAt: now });
    // Normally listening since start(); not awaited: the first token must not wait for a subscription.
    void this.cancels.listen();
    // The journal entry (stored: it is what makes the generation known to every instance) and
    // `started` (live only: the outcome is what clients must not miss) go out together, and the
    // provider is asked at once: its first token must not wait for the store. A delta waits only
    // for `started` to be out.
    const journalled = this.publish(
      GENERATION_JOURNAL_TOPIC,
      'journal.started',
      { jobId: id, userId, request: { ...generation.request } },
      true,
    );
    const documentId = request.documentId ? { documentId: request.documentId } : {};
    const started = this.publish(generation.topic, 'ai.generation.started', { generationId: id, ...documentId }, false);
    generation.announced = started.then(() => undefined);
    generation.announced.catch(() => undefined);
    generation.done = this.run(generation, Math.max(0, now + this.options.maxDurationMs - this.now()));
    try {
      // Answered once journalled, so GET and cancel work at once from any instance.
      await Promise.all([journalled, started]);
    } catch (error) {
      this.interrupt(generation, 'unannounced');
      await settleWithin(generation.done, SETTLE_WAIT_MS);
      this.generations.delete(id);
      throw error;
    }
    return id;
  }

  /**
   * Cancels a generation of `userId`: aborts the provider request and publishes `cancelled`.
   * Finished ones are left as they are. One running on another instance is cancelled by
   * publishing `cancelled` here, then asking that instance to stop it (job-cancels.ts).
   * @throws AppError `not_found` for an unknown id or another user's generation.
   */
  async cancel(userId: string, generationId: string): Promise<void> {
    const local = this.generations.owned(userId, generationId);
    if (local) {
      this.interrupt(local, 'user');
      await settleWithin(local.done, SETTLE_WAIT_MS);
      return;
    }
    const logged = await this.log.find(userId, generationId);
    if (!logged) throw this.generations.notFound(generationId);
    if (logged.status !== 'running') return;
    await this.publish(userTopic(userId), 'ai.generation.cancelled', { generationId }, true);
    this.options.metrics.aiGenerations.inc({ outcome: 'cancelled' });
    await this.cancels.request(generationId, userId).catch((error: unknown) => {
      this.options.logger.warn({ err: error, generationId }, 'cancelled, but its instance could not be told to stop');
    });
  }

  /**
   * Status and text so far of a generation of `userId`, from this instance's memory or the log.
   * @throws AppError `not_found` for an unknown id or another user's generation.
   */
  async get(userId: string, generationId: string): Promise<GenerationView> {
    const local = this.generations.owned(userId, generationId);
    if (local) {
      // Its outcome may already be out (a client has it) while its publish is being confirmed.
      if (local.finishing && local.status === 'running') await settleWithin(local.done, SETTLE_WAIT_MS);
      return view(local.id, local.status, local.emitted, local.error);
    }
    const logged = await this.log.find(userId, generationId);
    if (!logged) throw this.generations.notFound(generationId);
    if (logged.status === 'running' && this.generations.isOrphan(generationId)) {
      await this.failOrphan(userId, generationId, logged.text);
      return view(generationId, 'failed', logged.text, RESTART_ERROR);
    }
    return view(generationId, logged.status, logged.text, logged.error);
  }

  /**
   * Stops every running generation: hands it over with a checkpoint for the next start to continue
   * (see {@link GenerationServiceOptions.continueAfterRestart}), or else ends it with `failed`
   * {@link SHUTDOWN_ERROR}. Call before the store closes.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.leaseTimer);
    const running = this.generations.all().filter((generation) => generation.status === 'running');
    for (const generation of running) this.interrupt(generation, 'shutdown');
    await settleWithin(Promise.allSettled(running.map((generation) => generation.done)), SETTLE_WAIT_MS);
    await this.cancels.close();
  }

  /** A new registry entry, running, holding one of its user's slots (taken by the caller). */
  private register(fields: {
    id: string;
    userId: string;
    request: GenerationRequestRecord;
    createdAt: number;
    checkpoint?: GenerationCheckpoint;
  }): Generation {
    const { checkpoint, ...job } = fields;
    const generation: Generation = {
      ...job,
      request: { ...job.request },
      topic: userTopic(job.userId),
      status: 'running',
      emitted: checkpoint?.text ?? '',
      continuation: checkpoint?.text ?? '',
      tokens: checkpoint?.tokens ?? 0,
      earlierTokens: checkpoint?.tokens ?? 0,
      nextSeq: (checkpoint?.seq ?? -1) + 1,
      lastDeltaAt: this.now(),
      announced: Promise.resolve(),
      finishing: false,
      controller: new AbortController(),
      done: Promise.resolve(),
    };
    this.generations.add(generation);
    return generation;
  }

  /**
   * Continues a generation handed over by a clean stop, here, from its checkpoint: the provider is
   * asked to continue the text so far, and the deltas go on from the next seq, so a client sees one
   * unbroken generation. False when it cannot be (no checkpoint, not ours to take, out of time).
   */
  private continueOrphan(orphan: UnfinishedGeneration): boolean {
    const { request, checkpoint, generationId, userId } = orphan;
    const parts = parseGenerationId(generationId);
    if (!this.continueAfterRestart || !request || !checkpoint || !parts) return false;
    const timeLeft = parts.startedAtMs + this.options.maxDurationMs - this.now();
    if (timeLeft <= 0) return false;
    this.runningByUser.set(userId, (this.runningByUser.get(userId) ?? 0) + 1);
    // It was admitted before the restart: it counts again, whatever the user started since.
    void this.options.leases?.acquire({ userId, connectionId: generationId }, Number.MAX_SAFE_INTEGER);
    const generation = this.register({
      id: generationId,
      userId,
      request,
      createdAt: parts.startedAtMs,
      checkpoint,
    });
    generation.done = this.run(generation, timeLeft);
    this.options.metrics.aiGenerations.inc({ outcome: 'continued' });
    return true;
  }

  private async run(generation: Generation, timeLeftMs: number): Promise<void> {
    const { provider, flushMs, logger } = this.options;
    const coalescer = new DeltaCoalescer({
      flushMs,
      now: this.now,
      emit: async (text) => {
        await generation.announced;
        await this.publishDelta(generation, text);
      },
      onEmitError: (error) =>
        logger.warn({ err: error, generationId: generation.id }, 'delta not published; its text goes with the next'),
    });
    generation.coalescer = coalescer;
    const deadline = setTimeout(() => this.interrupt(generation, 'timeout'), timeLeftMs);
    try {
      let usage: CompletionUsage | undefined;
      const { request, continuation } = generation;
      // Out of tokens before a restart: nothing more to ask for.
      if (generation.tokens < request.maxTokens) {
        const { maxTokens, documentId: _documentId, ...input } = request;
        const stream = provider.stream({
          ...input,
          maxTokens: maxTokens - generation.tokens,
          signal: generation.controller.signal,
          ...(continuation === '' ? {} : { continuation }),
        });
        for await (const chunk of stream) {
          if (generation.stopReason) break;
          if (chunk.type === 'delta') {
            generation.tokens++;
            coalescer.push(chunk.text);
          } else usage = chunk.usage;
        }
      }
      if (generation.stopReason) throw new ProviderError('aborted', 'the generation was aborted');
      await coalescer.drain();
      await this.finish(generation, 'completed', { usage: withEarlierTokens(usage, generation) });
    } catch (error) {
      await this.finishAfterError(generation, error);
    } finally {
      clearTimeout(deadline);
      // The cluster-wide slot first: a create right after the local one frees must find it free too.
      await this.options.leases?.release({ userId: generation.userId, connectionId: generation.id });
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
    if (generation.stopReason === 'unannounced') return this.abandon(generation);
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
        if (this.continueAfterRestart && (await this.handOver(generation))) return;
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

  /**
   * Leaves a generation for the next start to continue: a stored `snapshot` (clients whose hot log
   * is gone with this process get the text so far from the store) and a journal checkpoint with
   * what the continuation needs. False when either could not be stored: then it must fail here.
   */
  private async handOver(generation: Generation): Promise<boolean> {
    generation.finishing = true;
    generation.coalescer?.stop();
    const { id: generationId, userId, emitted: text, tokens } = generation;
    const seq = generation.nextSeq - 1;
    try {
      await this.publish(generation.topic, 'ai.generation.snapshot', { generationId, seq, text }, true);
      await this.publish(
        GENERATION_JOURNAL_TOPIC,
        'journal.checkpoint',
        { jobId: generationId, userId, state: { seq, text, tokens } },
        true,
      );
    } catch (error) {
      this.options.logger.warn({ err: error, generationId }, 'generation not handed over; it fails instead');
      return false;
    }
    generation.finishedAt = this.now();
    this.options.metrics.aiGenerations.inc({ outcome: 'handed_over' });
    return true;
  }

  /** A generation that could not be journalled or announced: the request fails, nothing is left running. */
  private async abandon(generation: Generation): Promise<void> {
    generation.finishing = true;
    generation.coalescer?.stop();
    generation.status = 'failed';
    generation.finishedAt = this.now();
    const announced = await generation.announced.then(
      () => true,
      () => false,
    );
    // Live clients saw `started`: tell them it ended, as far as the bus still reaches.
    if (announced) {
      await this.publish(
        generation.topic,
        'ai.generation.failed',
        { generationId: generation.id, error: 'the generation could not be started', text: generation.emitted },
        false,
      ).catch(() => undefined);
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
          { generationId, error: details.error ?? 'failed', text: generation.emitted },
          true,
        );
      }
      this.settle(generation, status, details.error);
    } catch (error) {
      this.options.logger.error({ err: error, generationId, status }, 'the outcome of a generation was not stored');
      const reason = `the outcome could not be stored: ${error instanceof Error ? error.message : String(error)}`;
      this.settle(generation, 'failed', reason);
      if (status !== 'failed') {
        const failed = { generationId, error: reason, text: generation.emitted };
        await this.publish(generation.topic, 'ai.generation.failed', failed, true).catch(() => undefined);
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

  /** Another instance took a cancel request for a generation and published its `cancelled`. */
  private onRemoteCancel(generationId: string, userId: string): void {
    const generation = this.generations.get(generationId);
    if (!generation || generation.userId !== userId) return;
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

  /** Ends an orphan with `failed`, with its text so far: `text` when known, else what the log still has. */
  private failOrphan(userId: string, generationId: string, text?: string): Promise<void> {
    return this.generations.repairOnce(generationId, async () => {
      const soFar = text ?? (await this.log.find(userId, generationId))?.text ?? '';
      const failed = { generationId, error: RESTART_ERROR, text: soFar };
      await this.publish(userTopic(userId), 'ai.generation.failed', failed, true);
      this.options.metrics.aiGenerations.inc({ outcome: 'interrupted' });
    });
  }

  private publish(topic: string, type: string, payload: unknown, critical: boolean): Promise<EventRecord> {
    return this.options.publisher.publish({ topic, type, payload, critical });
  }

  private runningLeases(): ConnectionLease[] {
    return this.generations
      .all()
      .filter((generation) => generation.status === 'running' && !generation.finishing)
      .map((generation) => ({ userId: generation.userId, connectionId: generation.id }));
  }

  private release(userId: string): void {
    const running = (this.runningByUser.get(userId) ?? 1) - 1;
    if (running > 0) this.runningByUser.set(userId, running);
    else this.runningByUser.delete(userId);
  }
}

/** The usage a provider reported, with the tokens generated before a restart counted in. */
function withEarlierTokens(usage: CompletionUsage | undefined, generation: Generation): CompletionUsage | undefined {
  if (generation.earlierTokens === 0 || usage?.completionTokens === undefined) return usage;
  return { ...usage, completionTokens: usage.completionTokens + generation.earlierTokens };
}

function view(generationId: string, status: GenerationStatus, text: string, error?: string): GenerationView {
  return error !== undefined && status === 'failed'
    ? { generationId, status, text, error }
    : { generationId, status, text };
}
