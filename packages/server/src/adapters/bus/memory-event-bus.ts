import type { ComponentHealth, EventDraft, EventRecord } from '../../core/event-record.js';
import { nextEventId } from '../../core/event-id.js';
import type { BusListener, BusLogger, EventBus, HotLogRead, Unsubscribe } from './event-bus.js';
import { notifyListeners } from './topic-listeners.js';

/** Bounds of the hot log. */
export interface HotLogLimits {
  /** Events kept per topic; older ones are trimmed. */
  maxEvents: number;
  /** Events older than this are trimmed. */
  maxAgeMs: number;
  /**
   * In-process bus only: estimated bytes kept across all topics together; past it the oldest
   * events are evicted first, whatever their topic (readers from before them get a gap).
   * Default: no global bound.
   */
  maxBytes?: number;
}

interface TopicLog {
  /** Ascending by id. */
  events: EventRecord[];
  /** Publish times (ms) parallel to `events`, so age trimming does not parse ISO strings. */
  times: number[];
  /** Estimated sizes parallel to `events`, for the global byte budget. */
  sizes: number[];
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
  /** Estimated bytes of every event held. */
  private bytes = 0;
  private held = 0;
  /** Every event held, oldest first, for eviction across topics (entries already trimmed are skipped). */
  private readonly age: { log: TopicLog; id: number }[] = [];
  private ageHead = 0;

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
    const size = estimateSize(draft);
    const record: EventRecord = { ...draft, id: nextEventId(this.head, nowMs) };
    this.head = record.id;
    const log = this.logFor(record.topic);
    log.events.push(record);
    log.times.push(nowMs);
    log.sizes.push(size);
    this.bytes += size;
    this.held++;
    if (this.limits.maxBytes !== undefined) this.age.push({ log, id: record.id });
    this.trim(log, nowMs);
    this.enforceByteBudget();
    const listeners = this.listeners.get(record.topic);
    // The event is in the log: a listener that throws must not fail the publish.
    if (listeners) notifyListeners(listeners, record, this.logger);
    return record;
  }

  // In effect when it returns (the body has no await), which is what makes headNow() exact.
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
    // One topic (most streams, and every fresh stream's catch-up) needs no de-duplicating Set.
    for (const topic of topics.length === 1 ? topics : new Set(topics)) {
      const log = this.logs.get(topic);
      if (log) this.trim(log, nowMs);
      const coverage = Math.max(this.coveredFrom, log ? log.trimmedUpTo : this.droppedTopicsFloor);
      if (after < coverage) gapTopics.push(topic);
      const first = log?.events[0];
      oldestId = Math.min(oldestId, first ? first.id : coverage);
      const from = log ? firstIndexAfter(log.events, after) : 0;
      if (log && from < log.events.length) events = events.concat(log.events.slice(from));
    }
    if (events.length > 1) events.sort((a, b) => a.id - b.id);
    const truncated = events.length > limit;
    if (truncated) events = events.slice(events.length - limit);
    return { events, gapTopics, oldestId, truncated, liveAbove: this.head, head: this.head };
  }

  async headId(): Promise<number> {
    return this.head;
  }

  headNow(): number {
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
      log = { events: [], times: [], sizes: [], trimmedUpTo: this.droppedTopicsFloor };
      this.logs.set(topic, log);
    }
    return log;
  }

  private trim(log: TopicLog, nowMs: number): void {
    const oldestAllowed = nowMs - this.limits.maxAgeMs;
    let drop = Math.max(0, log.events.length - this.limits.maxEvents);
    while (drop < log.times.length && (log.times[drop] ?? Infinity) < oldestAllowed) drop++;
    if (drop === 0) return;
    this.dropOldest(log, drop);
  }

  /** Drops the `count` oldest events of `log`, moving its watermark past them. */
  private dropOldest(log: TopicLog, count: number): void {
    log.trimmedUpTo = log.events[count - 1]?.id ?? log.trimmedUpTo;
    log.events.splice(0, count);
    log.times.splice(0, count);
    for (const size of log.sizes.splice(0, count)) this.bytes -= size;
    this.held -= count;
  }

  /**
   * Past the global byte budget, evicts the oldest events of all, whatever their topic: many
   * small topics cannot add up to more than the budget, as each topic's own bound allows.
   */
  private enforceByteBudget(): void {
    const { maxBytes } = this.limits;
    if (maxBytes === undefined) return;
    while (this.bytes > maxBytes && this.ageHead < this.age.length) {
      const oldest = this.age[this.ageHead++] as { log: TopicLog; id: number };
      // Already trimmed by its topic's own bounds when its first event is no longer this one.
      if (oldest.log.events[0]?.id === oldest.id) this.dropOldest(oldest.log, 1);
    }
    // Entries of events trimmed by other means pile up: compact once they outnumber the live ones.
    if (this.ageHead > 1024 && this.ageHead * 2 > this.age.length) {
      this.age.splice(0, this.ageHead);
      this.ageHead = 0;
    }
    if (this.age.length - this.ageHead > 2 * this.held + 1024) {
      const live = this.age.slice(this.ageHead).filter((entry) => isHeld(entry.log, entry.id));
      this.age.length = 0;
      this.age.push(...live);
      this.ageHead = 0;
    }
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

/** Per-event overhead of the estimate: the record object, its strings' headers, the log's arrays. */
const RECORD_OVERHEAD_BYTES = 160;

/**
 * What an event costs the hot log, estimated from its JSON size (one byte per character): within
 * a small factor of the heap it really takes, which is what a budget in bytes needs. The JSON the
 * publisher made is reused; a payload that cannot be serialised (refused before it gets here,
 * but a bus takes what it is given) counts its overhead only.
 */
export function estimateSize(record: EventDraft): number {
  let payloadLength = record.payloadJson?.length;
  if (payloadLength === undefined) {
    try {
      payloadLength = (JSON.stringify(record.payload) as string | undefined)?.length ?? 0;
    } catch {
      payloadLength = 0;
    }
  }
  return RECORD_OVERHEAD_BYTES + record.topic.length + record.type.length + record.ts.length + payloadLength;
}

/** Whether event `id` is still in `log`. */
function isHeld(log: TopicLog, id: number): boolean {
  const index = firstIndexAfter(log.events, id - 1);
  return log.events[index]?.id === id;
}

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
