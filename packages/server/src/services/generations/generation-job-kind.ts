import type { GenerationStatus, GenerationView } from '@infinitescribe/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type { AIProvider, CompletionUsage } from '../../adapters/ai/ai-provider.js';
import type { Metrics } from '../../adapters/observability/metrics.js';
import { GENERATION_JOURNAL_TOPIC } from '../../core/journal-events.js';
import { newGenerationId, parseGenerationId } from '../../core/job-id.js';
import type { Job, JobKind, JobOutcome, Publish, UnfinishedJob } from '../jobs/job-kind.js';
import { DeltaCoalescer } from './delta-coalescer.js';
import type { GenerationCheckpoint, GenerationLog, GenerationRequestRecord } from './generation-log.js';

/** `failed.error` of a generation cut by a clean shutdown of its instance. */
export const SHUTDOWN_ERROR = 'server shut down while generating';
/** `failed.error` of a generation found orphaned: its instance stopped without finishing it. */
export const RESTART_ERROR = 'server restarted while generating';
/** `failed.error` when the provider threw something whose message is not meant for users. */
export const INTERNAL_ERROR = 'the generation failed unexpectedly';

/** A generation's own state beside the runner's. */
export interface GenerationWork {
  /** Text of the deltas published so far. */
  emitted: string;
  /** Text generated before a restart, which the provider continues (empty for a new generation). */
  continuation: string;
  /** Provider tokens consumed so far, including before a restart. */
  tokens: number;
  /** Of {@link tokens}, those before the restart (the provider's usage counts only the rest). */
  earlierTokens: number;
  nextSeq: number;
  lastDeltaAt: number;
  coalescer: DeltaCoalescer;
  /** Settles once `started` is live on the bus: deltas may follow it. */
  announced: Promise<unknown>;
}

export type GenerationJob = Job<GenerationRequestRecord, GenerationWork>;

/** What the generation kind needs. */
export interface GenerationKindOptions {
  provider: AIProvider;
  log: GenerationLog;
  publish: Publish;
  metrics: Metrics;
  logger: FastifyBaseLogger;
  flushMs: number;
  now: () => number;
}

/**
 * Generations as a job kind: the provider's stream, coalesced into `ai.generation.delta` on
 * `user:<id>` after a (live-only) `ai.generation.started`; `completed` carries the whole text and
 * the usage; a hand-over stores a snapshot of the text so far and continues it with the provider.
 */
export function generationJobKind(
  options: GenerationKindOptions,
): JobKind<GenerationRequestRecord, GenerationWork, GenerationCheckpoint, GenerationView> {
  const { provider, log, publish, metrics, logger, flushMs, now } = options;

  const publishDelta = async (
    job: { id: string; topic: string; createdAt: number },
    work: GenerationWork,
    text: string,
  ): Promise<void> => {
    const seq = work.nextSeq;
    await publish(job.topic, 'ai.generation.delta', { generationId: job.id, seq, text }, false);
    work.nextSeq = seq + 1;
    work.emitted += text;
    const at = now();
    if (seq === 0) metrics.aiTimeToFirstToken.observe((at - job.createdAt) / 1000);
    else metrics.aiInterDeltaGap.observe((at - work.lastDeltaAt) / 1000);
    work.lastDeltaAt = at;
  };

  return {
    noun: 'generation',
    idField: 'generationId',
    journalTopic: GENERATION_JOURNAL_TOPIC,
    outcomeTypes: {
      completed: 'ai.generation.completed',
      failed: 'ai.generation.failed',
      cancelled: 'ai.generation.cancelled',
    },
    shutdownError: SHUTDOWN_ERROR,
    restartError: RESTART_ERROR,
    internalError: INTERNAL_ERROR,
    eagerStart: true,
    newId: newGenerationId,
    parseId: parseGenerationId,
    labelOf: () => 'generation',
    count: (_label, outcome) => metrics.aiGenerations.inc({ outcome }),
    journalRequest: (request) => ({ ...request }),

    createWork(fields, checkpoint) {
      const work: GenerationWork = {
        emitted: checkpoint?.text ?? '',
        continuation: checkpoint?.text ?? '',
        tokens: checkpoint?.tokens ?? 0,
        earlierTokens: checkpoint?.tokens ?? 0,
        nextSeq: (checkpoint?.seq ?? -1) + 1,
        lastDeltaAt: now(),
        announced: Promise.resolve(),
        coalescer: new DeltaCoalescer({
          flushMs,
          now,
          emit: async (text) => {
            await work.announced;
            await publishDelta(fields, work, text);
          },
          onEmitError: (error) =>
            logger.warn({ err: error, generationId: fields.id }, 'delta not published; its text goes with the next'),
        }),
      };
      return work;
    },

    announce(job) {
      const documentId = job.spec.documentId ? { documentId: job.spec.documentId } : {};
      job.work.announced = publish(job.topic, 'ai.generation.started', { generationId: job.id, ...documentId }, false);
      return job.work.announced;
    },

    async run(job) {
      const { work, spec, signal } = job;
      let usage: CompletionUsage | undefined;
      // Out of tokens before a restart: nothing more to ask for.
      if (work.tokens < spec.maxTokens) {
        const { maxTokens, documentId: _documentId, ...input } = spec;
        const stream = provider.stream({
          ...input,
          maxTokens: maxTokens - work.tokens,
          signal,
          ...(work.continuation === '' ? {} : { continuation: work.continuation }),
        });
        for await (const chunk of stream) {
          if (signal.aborted) break;
          if (chunk.type === 'delta') {
            work.tokens++;
            work.coalescer.push(chunk.text);
          } else usage = chunk.usage;
        }
      }
      if (work.earlierTokens === 0 || usage?.completionTokens === undefined) return usage;
      // The tokens generated before a restart count in.
      return { ...usage, completionTokens: usage.completionTokens + work.earlierTokens };
    },

    drain: (job) => job.work.coalescer.drain(),
    stopOutput: async (job) => job.work.coalescer.stop(),

    outcomePayload(job, outcome: JobOutcome, details) {
      const text = job.work.emitted;
      if (outcome === 'cancelled') return {};
      if (outcome === 'failed') return { error: details.error ?? 'failed', text };
      const usage = details.result as CompletionUsage | undefined;
      return usage && Object.keys(usage).length > 0 ? { text, usage } : { text };
    },

    async checkpoint(job) {
      const { emitted: text, tokens } = job.work;
      const seq = job.work.nextSeq - 1;
      // Clients whose hot log is gone with this process get the text so far from the store.
      await publish(job.topic, 'ai.generation.snapshot', { generationId: job.id, seq, text }, true);
      return { seq, text, tokens };
    },

    view(job) {
      const { state } = job.state;
      const status: GenerationStatus =
        state === 'completed' || state === 'failed' || state === 'cancelled' ? state : 'running';
      const base = { generationId: job.id, status, text: job.work.emitted, seq: job.work.nextSeq - 1 };
      return job.state.state === 'failed' ? { ...base, error: job.state.error } : base;
    },

    async find(userId, id) {
      const logged = await log.find(userId, id);
      if (!logged) return undefined;
      const { status, text, seq, error } = logged;
      const view: GenerationView = { generationId: id, status, text, seq };
      if (status === 'failed' && error !== undefined) view.error = error;
      return { view, finished: status !== 'running', label: 'generation', known: { text } };
    },

    async unfinished(sinceMs) {
      const unfinished = await log.unfinished(sinceMs);
      return unfinished.map(({ generationId, userId, request, checkpoint }) => {
        const orphan: UnfinishedJob<GenerationRequestRecord, GenerationCheckpoint> = {
          jobId: generationId,
          userId,
          label: 'generation',
          known: checkpoint ? { text: checkpoint.text } : {},
        };
        if (request) orphan.spec = request;
        if (checkpoint) orphan.checkpoint = checkpoint;
        return orphan;
      });
    },

    async failedAfterRestart(userId, id, known) {
      const text = typeof known.text === 'string' ? known.text : ((await log.find(userId, id))?.text ?? '');
      return { text };
    },
  };
}
