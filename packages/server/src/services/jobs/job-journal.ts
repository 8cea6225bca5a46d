import { userTopic } from '@infinitescribe/protocol';
import type { EventBus } from '../../adapters/bus/event-bus.js';
import { UnavailableError } from '../../core/errors.js';
import type { EventStore } from '../../adapters/store/event-store.js';
import { idFloorAt } from '../../core/event-id.js';
import type { EventRecord } from '../../core/event-record.js';
import type { JournalPayload } from '../../core/journal-events.js';

/** Store page size of every journal read. */
export const JOURNAL_PAGE = 500;
/** Hot-log events read for one job. */
const HOT_LOG_READ_LIMIT = 10_000;
/** Instances' clocks may disagree by this much; reads start this much before a job's start. */
export const CLOCK_SKEW_MS = 60_000;
/** Users per store query in the recovery scan. */
const USERS_PER_QUERY = 100;

/** What a kind of job tells the journal about its events on the owner's `user:<id>` topic. */
export interface JobEvents {
  /** The journal topic (see journal-events.ts). */
  topic: string;
  /** The payload field naming the job (`generationId`, `taskId`). */
  idField: string;
  /** Outcome event types: a job with one of them stored is finished. */
  terminalTypes: ReadonlySet<string>;
}

/** A job's `journal.started`: its event id and payload. */
export interface JournalEntry {
  id: number;
  entry: JournalPayload<'journal.started'>;
}

/** A journalled job with no outcome in the store. */
export interface UnfinishedJob {
  jobId: string;
  userId: string;
  /** What it was asked to do (`journal.started`'s `request`). */
  request: Record<string, unknown>;
  /** Where it stood when its instance handed it over (the latest `journal.checkpoint`), if it did. */
  checkpoint?: Record<string, unknown>;
  /** Its latest stored event on the user's topic (e.g. the start of its current stage). */
  latest?: EventRecord;
}

/**
 * The journal of long-running jobs (generations, tasks) and the reads any instance needs to
 * answer for a job it does not run: each job is journalled when accepted (`journal.started`,
 * stored) and, when its instance stops cleanly, checkpointed; its events and outcome go on the
 * owner's `user:<id>` topic. Generations and tasks share this; only their payloads differ.
 */
export class JobJournal {
  constructor(
    private readonly sources: { bus: EventBus; store: EventStore },
    private readonly events: JobEvents,
  ) {}

  /** The job named by `event`'s payload, if any. */
  jobIdOf(event: EventRecord): string | undefined {
    const value = (event.payload as Record<string, unknown> | null)?.[this.events.idField];
    return typeof value === 'string' ? value : undefined;
  }

  /** Whether `event` is an outcome. */
  isTerminal(event: EventRecord): boolean {
    return this.events.terminalTypes.has(event.type);
  }

  /**
   * Jobs journalled since `sinceMs` that have no outcome in the store: those that were running
   * when their instance stopped (or still are, on another instance). With `onlyUserId`, that
   * user's only: the journal is read whole either way, but the outcomes are looked for on that
   * user's topic alone instead of every journalled user's.
   * @throws UnavailableError when the store cannot be read.
   */
  async unfinished(sinceMs: number, onlyUserId?: string): Promise<UnfinishedJob[]> {
    const candidates = new Map<string, UnfinishedJob & { journalId: number }>();
    await this.scan([this.events.topic], idFloorAt(sinceMs), (event) => {
      if (event.type === 'journal.started') {
        const { jobId, userId, request } = event.payload as JournalPayload<'journal.started'>;
        if (onlyUserId !== undefined && userId !== onlyUserId) return;
        candidates.set(jobId, { jobId, userId, request, journalId: event.id });
      } else if (event.type === 'journal.checkpoint') {
        const { jobId, state } = event.payload as JournalPayload<'journal.checkpoint'>;
        const candidate = candidates.get(jobId);
        if (candidate) candidate.checkpoint = state;
      }
    });
    const users = [...new Set([...candidates.values()].map((candidate) => candidate.userId))];
    for (let index = 0; index < users.length; index += USERS_PER_QUERY) {
      const batch = users.slice(index, index + USERS_PER_QUERY);
      const inBatch = [...candidates.values()].filter((candidate) => batch.includes(candidate.userId));
      const from = Math.min(...inBatch.map((candidate) => candidate.journalId));
      await this.scan(batch.map(userTopic), from, (event) => {
        const jobId = this.jobIdOf(event);
        const candidate = jobId === undefined ? undefined : candidates.get(jobId);
        if (!candidate || jobId === undefined || event.topic !== userTopic(candidate.userId)) return;
        if (this.isTerminal(event)) candidates.delete(jobId);
        else candidate.latest = event;
      });
    }
    return [...candidates.values()].map(({ journalId: _journalId, ...job }) => job);
  }

  /**
   * The journal entry of `jobId` and its events on `userId`'s topic, in id order, from `sinceMs`
   * (the job's start) up to and including its outcome: the stored ones (reading at most
   * `maxEvents`), then, unless the store has its outcome, the hot log's. The hot log holds what the
   * store never keeps (deltas, progress) and an outcome that went out a moment ago and is stored
   * but not given its id yet (see event-publisher.ts): whoever received an outcome finds it here.
   * Another user's job is not found: its entry names another user.
   * @throws UnavailableError when the store cannot be read.
   */
  async history(
    userId: string,
    jobId: string,
    sinceMs: number,
    maxEvents: number,
  ): Promise<{ started?: JournalEntry; events: EventRecord[] }> {
    const topic = userTopic(userId);
    let started: JournalEntry | undefined;
    const events: EventRecord[] = [];
    let done = false;
    await this.scan(
      // The entry comes first (it is published before anything else of the job): then only the user's topic.
      () => (started ? [topic] : [this.events.topic, topic]),
      idFloorAt(sinceMs - CLOCK_SKEW_MS),
      (event) => {
        if (event.topic === this.events.topic) {
          const entry = event.payload as JournalPayload<'journal.started'>;
          if (event.type === 'journal.started' && entry.jobId === jobId && entry.userId === userId) {
            started = { id: event.id, entry };
          }
        } else if (this.jobIdOf(event) === jobId) {
          events.push(event);
          if (this.isTerminal(event)) done = true;
        }
      },
      { stop: () => done, maxEvents },
    );
    if (!done && (started || events.length > 0)) {
      const stored = new Set(events.map((event) => event.id));
      const after = (events[0]?.id ?? idFloorAt(sinceMs - CLOCK_SKEW_MS) + 1) - 1;
      for (const event of await this.hotLog(topic, after, HOT_LOG_READ_LIMIT)) {
        if (this.jobIdOf(event) === jobId && !stored.has(event.id)) events.push(event);
      }
      events.sort((a, b) => a.id - b.id);
    }
    return started ? { started, events } : { events };
  }

  /** Pages through the store after `after` on `topics` until `stop()` or the end. */
  private async scan(
    topics: readonly string[] | (() => readonly string[]),
    after: number,
    visit: (event: EventRecord) => void,
    { stop = () => false, maxEvents = Number.POSITIVE_INFINITY }: { stop?: () => boolean; maxEvents?: number } = {},
  ): Promise<void> {
    let cursor = after;
    for (let scanned = 0; scanned < maxEvents; scanned += JOURNAL_PAGE) {
      const events = await this.readStore(typeof topics === 'function' ? topics() : topics, cursor);
      for (const event of events) {
        visit(event);
        if (stop()) return;
      }
      if (events.length < JOURNAL_PAGE) return;
      cursor = events.at(-1)?.id ?? cursor;
    }
  }

  /** Events on `topic` in the hot log after `after` (for what the store does not keep). */
  private async hotLog(topic: string, after: number, limit: number): Promise<EventRecord[]> {
    const { events } = await this.sources.bus.read([topic], after, limit);
    return events;
  }

  private async readStore(topics: readonly string[], after: number): Promise<EventRecord[]> {
    try {
      return await this.sources.store.readAfter({ topics: [...topics], after, limit: JOURNAL_PAGE });
    } catch (error) {
      throw new UnavailableError('store_unavailable', 'the event store is unavailable', error);
    }
  }
}
