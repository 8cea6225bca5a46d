import type { ComponentHealth, EventRecord } from '../events/event-record.js';

/** A query for stored events on some topics after an id. */
export interface StoreReadQuery {
  topics: readonly string[];
  /** Exclusive lower bound. */
  after: number;
  /** Exclusive upper bound; omitted means no bound. */
  before?: number;
  /** At most this many events, the oldest first. */
  limit: number;
}

/**
 * The durable log of critical events. Same SQL and migrations on every adapter.
 * Appends are idempotent on `id`, so a retried write never duplicates an event.
 */
export interface EventStore {
  readonly kind: 'pglite' | 'postgres';
  /** Opens the connection and runs pending migrations. */
  init(): Promise<void>;
  append(event: EventRecord): Promise<void>;
  /** Ascending by id. */
  readAfter(query: StoreReadQuery): Promise<EventRecord[]>;
  /** The highest id stored; 0 when none. */
  maxId(): Promise<number>;
  /**
   * Records the id counter's position at a clean shutdown, so the next start neither issues
   * lower ids nor reports a gap to clients that were fully caught up.
   */
  recordHeadId(id: number): Promise<void>;
  /**
   * Returns the head recorded by {@link EventStore.recordHeadId} and clears it, so that a later
   * crash (no clean shutdown) cannot reuse a stale marker; `undefined` when none was recorded.
   */
  takeRecordedHeadId(): Promise<number | undefined>;
  /** Deletes events published before `cutoff` (only on `topics`, when given); returns how many. */
  deleteOlderThan(cutoff: Date, options?: { topics?: readonly string[] }): Promise<number>;
  health(): Promise<ComponentHealth>;
  /**
   * What the store knows about its own state without asking the database (closed, an open
   * breaker): `down` then, otherwise `undefined`. Cheap enough for every critical publish, which
   * is refused up front while it is `down`; `health()` is the probe, for /readyz.
   */
  knownDown(): ComponentHealth | undefined;
  close(): Promise<void>;
}
