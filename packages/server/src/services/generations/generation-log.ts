import type { EventPayload, GenerationStatus } from '@infinitescribe/protocol';
import { GENERATION_MESSAGE_SCHEMA } from '@infinitescribe/protocol/schemas';
import { z } from 'zod';
import type { EventBus } from '../../adapters/bus/event-bus.js';
import type { EventRecord } from '../../core/event-record.js';
import { JobJournal, type UnfinishedJob } from '../jobs/job-journal.js';
import { GENERATION_JOURNAL_TOPIC } from '../../core/journal-events.js';
import type { EventStore } from '../../adapters/store/event-store.js';
import { parseGenerationId } from '../../core/job-id.js';

/** At most this many stored events are read to find one generation. */
const MAX_SCANNED_EVENTS = 20_000;

export type { GenerationStatus };

const TERMINAL_STATUS: Partial<Record<string, GenerationStatus>> = {
  'ai.generation.completed': 'completed',
  'ai.generation.failed': 'failed',
  'ai.generation.cancelled': 'cancelled',
};

/**
 * What a generation was asked for: its journal entry's `request`, enough to run it again (the
 * whole conversation, so a start after a restart can continue it).
 */
const requestRecordSchema = z.object({
  messages: z.array(GENERATION_MESSAGE_SCHEMA).min(1),
  system: z.string().optional(),
  temperature: z.number().optional(),
  model: z.string().optional(),
  maxTokens: z.number(),
  documentId: z.string().optional(),
});
export type GenerationRequestRecord = z.infer<typeof requestRecordSchema>;

/** Where a generation stood when its instance handed it over: its checkpoint's `state`. */
export interface GenerationCheckpoint {
  /** Seq of its last delta (-1 before the first). */
  seq: number;
  /** All the text of its deltas up to `seq`. */
  text: string;
  /** Provider tokens consumed so far. */
  tokens: number;
}

/** A generation as the event log tells it. */
export interface LoggedGeneration {
  generationId: string;
  userId: string;
  status: GenerationStatus;
  /** Full text when finished; otherwise the text so far the log still has (a prefix). */
  text: string;
  /** Seq of the last delta in `text` as far as the log still has them (-1 before the first). */
  seq: number;
  error?: string;
}

/** A journalled generation without an outcome in the store. */
export interface UnfinishedGeneration {
  generationId: string;
  userId: string;
  request?: GenerationRequestRecord;
  checkpoint?: GenerationCheckpoint;
}

/**
 * Reads generations back from the event log, so that any instance can answer for any generation:
 * the journal entry, checkpoints and outcomes from the store (they are critical), the text of the
 * deltas from the hot log.
 */
export class GenerationLog {
  private readonly journal: JobJournal;

  constructor(private readonly sources: { bus: EventBus; store: EventStore }) {
    this.journal = new JobJournal(sources, {
      topic: GENERATION_JOURNAL_TOPIC,
      idField: 'generationId',
      terminalTypes: new Set(Object.keys(TERMINAL_STATUS)),
    });
  }

  /**
   * The generation `generationId` of `userId` (another user's generation is simply not found);
   * `undefined` when unknown or expired from the store.
   * @throws UnavailableError when the store cannot be read.
   */
  async find(userId: string, generationId: string): Promise<LoggedGeneration | undefined> {
    const parts = parseGenerationId(generationId);
    if (!parts) return undefined;
    const { started, events } = await this.journal.history(userId, generationId, parts.startedAtMs, MAX_SCANNED_EVENTS);
    if (!started) return undefined;
    const terminal = events.find((event) => this.journal.isTerminal(event));
    const status = terminal ? (TERMINAL_STATUS[terminal.type] as GenerationStatus) : 'running';
    // A stored snapshot is a checkpoint: the text up to its seq; the deltas after it are in the hot log.
    const checkpoint = events.findLast((event) => event.type === 'ai.generation.snapshot');
    const base = checkpoint ? (checkpoint.payload as EventPayload<'ai.generation.snapshot'>) : { seq: -1, text: '' };
    const deltas = this.deltaText(events, generationId, base.seq + 1);
    const result: LoggedGeneration = { generationId, userId, status, text: '', seq: deltas.nextSeq - 1 };
    const finalText = terminal ? (terminal.payload as { text?: string }).text : undefined;
    result.text = finalText ?? base.text + deltas.text;
    if (terminal?.type === 'ai.generation.failed') result.error = (terminal.payload as { error: string }).error;
    return result;
  }

  /**
   * Generations journalled since `sinceMs` that have no outcome in the store: those that were
   * running when their instance stopped (or still are, on another instance), with their request
   * and, for those handed over by a clean stop, their checkpoint.
   */
  async unfinished(sinceMs: number, onlyUserId?: string): Promise<UnfinishedGeneration[]> {
    const jobs = await this.journal.unfinished(sinceMs, onlyUserId);
    return jobs.map((job) => {
      const generation: UnfinishedGeneration = { generationId: job.jobId, userId: job.userId };
      const request = requestOf(job);
      if (request) generation.request = request;
      const checkpoint = checkpointOf(job);
      if (checkpoint) generation.checkpoint = checkpoint;
      return generation;
    });
  }

  /**
   * The text of a generation's deltas among `events`, from `fromSeq` on: the longest run without a
   * hole. `complete` is false when a delta past the run exists (a hole).
   */
  deltaText(
    events: readonly EventRecord[],
    generationId: string,
    fromSeq: number,
  ): { text: string; nextSeq: number; complete: boolean } {
    const bySeq = new Map<number, string>();
    for (const event of events) {
      if (event.type !== 'ai.generation.delta' || this.journal.jobIdOf(event) !== generationId) continue;
      const { seq, text } = event.payload as EventPayload<'ai.generation.delta'>;
      if (seq >= fromSeq) bySeq.set(seq, text);
    }
    let text = '';
    let seq = fromSeq;
    for (; bySeq.has(seq); seq++) text += bySeq.get(seq);
    return { text, nextSeq: seq, complete: bySeq.size === seq - fromSeq };
  }
}

function requestOf(job: UnfinishedJob): GenerationRequestRecord | undefined {
  const { prompt, ...request } = job.request;
  // Entries journalled by a version before conversations carry `prompt`: one user message.
  if (typeof prompt === 'string' && request.messages === undefined) {
    request.messages = [{ role: 'user', content: prompt }];
  }
  const parsed = requestRecordSchema.safeParse(request);
  return parsed.success ? parsed.data : undefined;
}

function checkpointOf(job: UnfinishedJob): GenerationCheckpoint | undefined {
  const state = job.checkpoint;
  if (!state) return undefined;
  const { seq, text, tokens } = state;
  if (typeof seq !== 'number' || typeof text !== 'string' || typeof tokens !== 'number') return undefined;
  return { seq, text, tokens };
}
