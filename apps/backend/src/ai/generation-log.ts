import { userTopic } from '@infinitescribe/protocol';
import type { EventBus } from '../bus/event-bus.js';
import { UnavailableError } from '../errors.js';
import { idFloorAt } from '../events/event-id.js';
import type { EventRecord } from '../events/event-record.js';
import type { EventStore } from '../store/event-store.js';
import { parseGenerationId } from './generation-id.js';

/**
 * Internal topic where every generation start is journalled (critical, so in the store), so that a
 * starting instance can find the generations that were running when the process died. The
 * journal's `generationId` field is `<generationId>~<userId>`: the catalogue has no user field.
 * No client should be granted this topic.
 */
export const GENERATION_JOURNAL_TOPIC = 'ai-generations';

const JOURNAL_SEPARATOR = '~';
/** Longest `generationId` the catalogue accepts. */
const MAX_ID_LENGTH = 128;
/** Instances' clocks may disagree by this much; reads start this much before a generation's start. */
export const CLOCK_SKEW_MS = 60_000;
const PAGE = 500;
/** At most this many stored events are read to find one generation. */
const MAX_SCANNED_EVENTS = 20_000;
/** Hot-log events read for a generation's deltas. */
const HOT_LOG_READ_LIMIT = 10_000;
/** Users per store query in the recovery scan. */
const USERS_PER_QUERY = 100;

/** Every state a generation can be in. */
export type GenerationStatus = 'running' | 'completed' | 'failed' | 'cancelled';

const TERMINAL_STATUS: Partial<Record<string, GenerationStatus>> = {
  'ai.generation.completed': 'completed',
  'ai.generation.failed': 'failed',
  'ai.generation.cancelled': 'cancelled',
};

/** A generation as the event log tells it. */
export interface LoggedGeneration {
  generationId: string;
  userId: string;
  status: GenerationStatus;
  /** Full text when completed; otherwise the text of the deltas still in the hot log (a prefix). */
  text: string;
  error?: string;
}

/** A generation whose start is journalled and that has no terminal event. */
export interface UnfinishedGeneration {
  generationId: string;
  userId: string;
}

/** The journal entry's `generationId`, or `undefined` when user id and generation id are too long together. */
export function journalKey(generationId: string, userId: string): string | undefined {
  const key = `${generationId}${JOURNAL_SEPARATOR}${userId}`;
  return key.length <= MAX_ID_LENGTH ? key : undefined;
}

/** Splits a {@link journalKey} back into its id and user id (ids have no `~`, user ids may). */
export function parseJournalKey(key: string): { id: string; userId: string } | undefined {
  const at = key.indexOf(JOURNAL_SEPARATOR);
  if (at <= 0 || at === key.length - 1) return undefined;
  return { id: key.slice(0, at), userId: key.slice(at + 1) };
}

function generationIdOf(event: EventRecord): string | undefined {
  const payload = event.payload as { generationId?: unknown } | null;
  return typeof payload?.generationId === 'string' ? payload.generationId : undefined;
}

/**
 * Reads generations back from the event log, so that any instance can answer for any generation:
 * starts and outcomes from the store (they are critical), text so far from the hot log (deltas).
 */
export class GenerationLog {
  constructor(private readonly sources: { bus: EventBus; store: EventStore }) {}

  /**
   * The generation `generationId` of `userId` (only the owner's topic is read, so another user's
   * generation is simply not found); `undefined` when unknown or expired from the store.
   * @throws UnavailableError when the store cannot be read.
   */
  async find(userId: string, generationId: string): Promise<LoggedGeneration | undefined> {
    const parts = parseGenerationId(generationId);
    if (!parts) return undefined;
    const topic = userTopic(userId);
    let started: EventRecord | undefined;
    let terminal: EventRecord | undefined;
    let after = idFloorAt(parts.startedAtMs - CLOCK_SKEW_MS);
    for (let scanned = 0; scanned < MAX_SCANNED_EVENTS && terminal === undefined; scanned += PAGE) {
      const events = await this.readStore([topic], after);
      for (const event of events) {
        if (generationIdOf(event) !== generationId) continue;
        if (event.type === 'ai.generation.started') started ??= event;
        else if (TERMINAL_STATUS[event.type] !== undefined) {
          terminal = event;
          break;
        }
      }
      if (events.length < PAGE) break;
      after = events.at(-1)?.id ?? after;
    }
    if (!started) return undefined;
    const status = terminal ? (TERMINAL_STATUS[terminal.type] as GenerationStatus) : 'running';
    const result: LoggedGeneration = { generationId, userId, status, text: '' };
    if (terminal?.type === 'ai.generation.completed') {
      result.text = (terminal.payload as { text: string }).text;
    } else {
      result.text = await this.deltaText(topic, generationId, started.id);
    }
    if (terminal?.type === 'ai.generation.failed') result.error = (terminal.payload as { error: string }).error;
    return result;
  }

  /**
   * Generations journalled since `sinceMs` that have no outcome in the store: those that were
   * running when their instance stopped (or still are, on another instance).
   */
  async unfinished(sinceMs: number): Promise<UnfinishedGeneration[]> {
    const candidates = new Map<string, UnfinishedGeneration & { startedId: number }>();
    let after = idFloorAt(sinceMs);
    for (;;) {
      const events = await this.readStore([GENERATION_JOURNAL_TOPIC], after);
      for (const event of events) {
        const key = generationIdOf(event);
        const entry = key === undefined ? undefined : parseJournalKey(key);
        if (entry && event.type === 'ai.generation.started') {
          candidates.set(entry.id, { generationId: entry.id, userId: entry.userId, startedId: event.id });
        }
      }
      if (events.length < PAGE) break;
      after = events.at(-1)?.id ?? after;
    }
    const users = [...new Set([...candidates.values()].map((candidate) => candidate.userId))];
    for (let index = 0; index < users.length; index += USERS_PER_QUERY) {
      const batch = users.slice(index, index + USERS_PER_QUERY);
      const inBatch = [...candidates.values()].filter((candidate) => batch.includes(candidate.userId));
      let cursor = Math.min(...inBatch.map((candidate) => candidate.startedId));
      for (;;) {
        const events = await this.readStore(batch.map(userTopic), cursor);
        for (const event of events) {
          const generationId = generationIdOf(event);
          if (generationId !== undefined && TERMINAL_STATUS[event.type] !== undefined) candidates.delete(generationId);
        }
        if (events.length < PAGE) break;
        cursor = events.at(-1)?.id ?? cursor;
      }
    }
    return [...candidates.values()].map(({ generationId, userId }) => ({ generationId, userId }));
  }

  /** The generation's text from its deltas in the hot log: the longest run from seq 0 without a hole. */
  private async deltaText(topic: string, generationId: string, startedId: number): Promise<string> {
    const { events } = await this.sources.bus.read([topic], startedId, HOT_LOG_READ_LIMIT);
    const bySeq = new Map<number, string>();
    for (const event of events) {
      if (event.type !== 'ai.generation.delta' || generationIdOf(event) !== generationId) continue;
      const { seq, text } = event.payload as { seq: number; text: string };
      bySeq.set(seq, text);
    }
    let text = '';
    for (let seq = 0; bySeq.has(seq); seq++) text += bySeq.get(seq);
    return text;
  }

  private async readStore(topics: string[], after: number): Promise<EventRecord[]> {
    try {
      return await this.sources.store.readAfter({ topics, after, limit: PAGE });
    } catch (error) {
      throw new UnavailableError('store_unavailable', 'the event store is unavailable', error);
    }
  }
}
