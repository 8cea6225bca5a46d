import type { ComponentHealth, EventDraft, EventRecord } from '../../core/event-record.js';
import type { ConversationStore } from './conversation-store.js';

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

/** A critical event stored before it has an id, under its key (see event-publisher.ts). */
export type PendingEvent = EventDraft & { key: string };

/** A pending row, and how long ago it was committed (by the database's clock). */
export interface PendingRow {
  event: PendingEvent;
  ageMs: number;
}

/** A critical event once the bus gave it its id. */
export type KeyedEventRecord = EventRecord & { key: string };

/**
 * The durable log of critical events. Same SQL and migrations on every adapter.
 * Appends are idempotent on `id` and on the key, so a retried write never duplicates an event.
 *
 * A critical event is stored *pending* before it is published (durable before visible), then
 * confirmed with the id the bus gave it. Pending rows are invisible to every read by id
 * ({@link EventStore.readAfter}, {@link EventStore.maxId}); {@link EventStore.readPending} is
 * for the repair pass that decides the fate of rows whose publisher never confirmed them.
 */
export interface EventStore {
  readonly kind: 'pglite' | 'postgres';
  /** The users' chat conversations, in the same database (opened, migrated and closed with it). */
  readonly conversations: ConversationStore;
  /** Opens the connection and runs pending migrations. */
  init(): Promise<void>;
  /** Stores an event that already has its id (imports, tests). */
  append(event: EventRecord): Promise<void>;
  /** Stores a critical event before it is published, under its key, with no id yet. */
  insertPending(event: PendingEvent): Promise<void>;
  /**
   * Gives the pending row of `record.key` its id. Idempotent; if the row is gone (the repair pass
   * dropped it as never published), stores the whole record again.
   */
  confirm(record: KeyedEventRecord): Promise<void>;
  /** Deletes the pending row of `key` (its publish was refused, nothing went out); a no-op once confirmed. */
  discardPending(key: string): Promise<void>;
  /** Pending rows committed at least `olderThanMs` ago by the database's clock, oldest first. */
  readPending(query: { olderThanMs: number; limit: number }): Promise<PendingRow[]>;
  /** Ascending by id; pending rows are never returned. */
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
