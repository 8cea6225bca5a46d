import type { ComponentHealth, EventDraft, EventRecord } from '../events/event-record.js';
import { nextEventId } from '../events/event-id.js';
import type { BusListener, BusLogger, EventBus, HotLogRead, Unsubscribe } from './event-bus.js';

/** Bounds of the hot log, per topic. */
export interface HotLogLimits {
  /** Events kept per topic; older ones are trimmed. */
  maxEvents: number;
  /** Events older than this are trimmed. */
  maxAgeMs: number;
}

interface TopicLog {
  /** Ascending by id. */
  events: EventRecord[];
  /** Publish times (ms) parallel to `events`, so age trimming does not parse ISO strings. */
  times: number[];
  /** Highest id trimmed from this topic: a reader from below it has lost events. */
  trimmedUpTo: number;
}

/**
 * In-process bus and hot log: the embedded default. Everything happens synchronously inside
 * `publish`, which is what makes id assignment, append and fan-out one atomic step here.
 */
export class MemoryEventBus implements EventBus {
  readonly kind = 'memory' as const;
  private readonly logs = new Map<string, TopicLog>();
  private readonly listeners = new Map<string, Set<BusListener>>();
  private head = 0;
  private coveredFrom = 0;
  /** Trim floor inherited by topics whose log was dropped after aging out completely. */
  private droppedTopicsFloor = 0;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly limits: HotLogLimits,
    private readonly now: () => number = Date.now,
    private readonly logger?: BusLogger,
  ) {}

  async start(options: { idFloor: number; coveredFrom: number }): Promise<void> {
    this.head = Math.max(this.head, options.idFloor);
    this.coveredFrom = options.coveredFrom;
    this.sweepTimer = setInterval(() => this.sweep(), Math.min(this.limits.maxAgeMs, 60_000));
    this.sweepTimer.unref();
  }

  async publish(draft: EventDraft): Promise<EventRecord> {
    const nowMs = this.now();
    const record: EventRecord = { ...draft, id: nextEventId(this.head, nowMs) };
    this.head = record.id;
    const log = this.logFor(record.topic);
    log.events.push(record);
    log.times.push(nowMs);
    this.trim(log, nowMs);
    const listeners = this.listeners.get(record.topic);
    if (listeners) {
      for (const listener of listeners) {
        // The event is in the log: a listener that throws must neither keep it from the others nor
        // fail the publish (a caller told "failed" would publish it again).
        try {
          listener(record);
        } catch (error) {
          this.logger?.warn({ err: error, topic: record.topic }, 'a bus listener threw');
        }
      }
    }
    return record;
  }

  async subscribe(topic: string, listener: BusListener): Promise<Unsubscribe> {
    let set = this.listeners.get(topic);
    if (!set) {
      set = new Set();
      this.listeners.set(topic, set);
    }
    // A wrapper gives every subscription its own identity, so subscribing the same function twice
    // and unsubscribing once leaves the other subscription intact.
    const own: BusListener = (event) => listener(event);
    set.add(own);
    return async () => {
      set.delete(own);
      if (set.size === 0 && this.listeners.get(topic) === set) this.listeners.delete(topic);
    };
  }

  async read(topics: readonly string[], after: number, limit: number): Promise<HotLogRead> {
    const nowMs = this.now();
    const gapTopics: string[] = [];
    let events: EventRecord[] = [];
    let oldestId = this.head;
    for (const topic of new Set(topics)) {
      const log = this.logs.get(topic);
      if (log) this.trim(log, nowMs);
      const coverage = Math.max(this.coveredFrom, log ? log.trimmedUpTo : this.droppedTopicsFloor);
      if (after < coverage) gapTopics.push(topic);
      const first = log?.events[0];
      oldestId = Math.min(oldestId, first ? first.id : coverage);
      if (log) events = events.concat(log.events.slice(firstIndexAfter(log.events, after)));
    }
    events.sort((a, b) => a.id - b.id);
    const truncated = events.length > limit;
    if (truncated) events = events.slice(events.length - limit);
    return { events, gapTopics, oldestId, truncated };
  }

  async headId(): Promise<number> {
    return this.head;
  }

  async health(): Promise<ComponentHealth> {
    return { status: 'up' };
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.listeners.clear();
  }

  private logFor(topic: string): TopicLog {
    let log = this.logs.get(topic);
    if (!log) {
      log = { events: [], times: [], trimmedUpTo: this.droppedTopicsFloor };
      this.logs.set(topic, log);
    }
    return log;
  }

  private trim(log: TopicLog, nowMs: number): void {
    const oldestAllowed = nowMs - this.limits.maxAgeMs;
    let drop = Math.max(0, log.events.length - this.limits.maxEvents);
    while (drop < log.times.length && (log.times[drop] ?? Infinity) < oldestAllowed) drop++;
    if (drop === 0) return;
    log.trimmedUpTo = log.events[drop - 1]?.id ?? log.trimmedUpTo;
    log.events.splice(0, drop);
    log.times.splice(0, drop);
  }

  /**
   * Trims aged events everywhere. Emptied topics keep their entry (so a client that saw a topic's
   * last event resumes without a false gap) until there are too many; then they are folded into
   * one conservative floor so idle topics cannot hold memory forever.
   */
  private sweep(): void {
    const nowMs = this.now();
    const empty: string[] = [];
    for (const [topic, log] of this.logs) {
      this.trim(log, nowMs);
      if (log.events.length === 0) empty.push(topic);
    }
    if (empty.length <= MAX_EMPTY_TOPIC_LOGS) return;
    for (const topic of empty) {
      const log = this.logs.get(topic);
      if (log) this.droppedTopicsFloor = Math.max(this.droppedTopicsFloor, log.trimmedUpTo);
      this.logs.delete(topic);
    }
  }
}

const MAX_EMPTY_TOPIC_LOGS = 50_000;

/** Index of the first event with id > `after` (binary search; `events` is ascending). */
function firstIndexAfter(events: readonly EventRecord[], after: number): number {
  let low = 0;
  let high = events.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((events[middle]?.id ?? Infinity) <= after) low = middle + 1;
    else high = middle;
  }
  return low;
}
