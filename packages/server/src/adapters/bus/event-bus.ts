import type { ComponentHealth, EventDraft, EventRecord } from '../../core/event-record.js';

/**
 * The bus refused a publish before anything went out (Redis unreachable and the event critical,
 * or no id slot for local delivery): the event is certainly not published.
 */
export class PublishRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PublishRefusedError';
  }
}

/**
 * The bus cannot start: instances of the same deployment run it with another number of partitions
 * (REDIS_BUS_PARTITIONS), so under other keys; started, this one would be a second bus, and neither's
 * streams would get the other's events.
 */
export class BusLayoutError extends Error {
  readonly code = 'bus_layout_conflict';
  constructor(message: string) {
    super(message);
    this.name = 'BusLayoutError';
  }
}

/** Called for each live event on a subscribed topic, in id order. */
export type BusListener = (event: EventRecord) => void;

/** Where an adapter reports what it cannot throw (pino and Fastify loggers fit). */
export interface BusLogger {
  warn(details: object, message: string): void;
}

/** Ends a subscription. */
export type Unsubscribe = () => Promise<void>;

/** Result of reading the hot log after a given id. */
export interface HotLogRead {
  /** Events with id > `after` on the requested topics, ascending by id. */
  events: EventRecord[];
  /**
   * Topics whose hot log no longer reaches back to `after` (trimmed by size or age, or started
   * after it): events on them between `after` and `oldestId` may be gone from the hot log.
   */
  gapTopics: string[];
  /** Oldest id the hot log still vouches for on these topics (the resume point a reset names). */
  oldestId: number;
  /** More than `limit` events matched: the oldest were left out, so the read is incomplete. */
  truncated: boolean;
  /**
   * The highest id issued when the log was read: every event above it went out after the read,
   * so a subscription active before the read gets it live. Absent when the read cannot promise
   * that (an instance serving alone while Redis is unreachable never gets other instances' events).
   */
  liveAbove?: number;
  /**
   * Entries of the log that could not be decoded and were left out (the read is incomplete); only
   * a log written by another version can hold such an entry.
   */
  unreadable?: number;
  /**
   * What {@link EventBus.headId} would have answered at the read, when the bus tells it with the
   * read (saves a resume a second round trip).
   */
  head?: number;
}

/**
 * The bus + hot log port: assigns ids, keeps a bounded per-topic log and fans events out to
 * every instance. Id assignment, append and fan-out happen as one atomic step, so a reader that
 * subscribed before reading the log can stitch log and live together by id alone.
 */
export interface EventBus {
  readonly kind: 'memory' | 'redis';
  /**
   * Connects and seeds the id counter so that no id at or below `idFloor` is ever issued.
   * `coveredFrom` is the id from which a fresh (empty) log still vouches that nothing was lost:
   * the head recorded at a clean shutdown, otherwise `idFloor`.
   */
  start(options: { idFloor: number; coveredFrom: number }): Promise<void>;
  /** Assigns the next id, appends to the topic's hot log and fans out; resolves with the record. */
  publish(draft: EventDraft): Promise<EventRecord>;
  /** Live events on `topic`; resolves once the subscription is active. */
  subscribe(topic: string, listener: BusListener): Promise<Unsubscribe>;
  /** Reads the hot log after `after` on `topics`, at most `limit` events (the newest are kept). */
  read(topics: readonly string[], after: number, limit: number): Promise<HotLogRead>;
  /** The highest id issued so far. */
  headId(): Promise<number>;
  /**
   * The highest id issued so far, known without waiting, on a bus that fans every event out in the
   * same step as it issues its id and whose `subscribe` is in effect when it returns and cannot
   * fail (the in-process bus): a subscriber added right after reading it gets every event above it
   * live and is owed nothing at or below it, so a fresh stream needs no hot-log read to start.
   * Absent where the head takes a round trip (Redis): such a stream reads the head, subscribes,
   * then catches up on what landed between the two.
   */
  headNow?(): number;
  health(): Promise<ComponentHealth>;
  close(): Promise<void>;
}
