/**
 * One published event as the server keeps it: in the hot log, in the store, on the bus.
 * `id` is its position in the single id space (see event-id.ts); `payload` has passed the catalogue
 * (or, on the internal journal topics only, the journal's own schemas).
 */
export interface EventRecord {
  id: number;
  topic: string;
  /** A catalogue type (built in, or one of the host's own) or, on the journal topics, a journal type. */
  type: string;
  /** ISO-8601 publish time. */
  ts: string;
  payload: unknown;
  /** Critical events are persisted in the store before the publish is acknowledged. */
  critical: boolean;
  /**
   * `payload` as JSON, serialised once by the publisher before the id was assigned; the bus, the
   * store and the frames reuse it. Absent on records decoded from Redis or the store (they
   * serialise `payload` again, once per event).
   */
  payloadJson?: string;
  /**
   * Critical events: the key the store holds the event under from before it had an id (it is stored
   * pending, then published, then given its id: see event-publisher.ts). Never sent to clients.
   */
  key?: string;
  /**
   * Set on an event a Redis-bus instance published on its own while Redis was unreachable: the
   * highest id known when that outage began. Its id may pass over events of other instances that
   * this instance never got, so each stream and poll is told (`stream.reset {gap, since}`) before it.
   */
  island?: number;
}

/** An event before it has an id. */
export type EventDraft = Omit<EventRecord, 'id'>;

/** What a dependency reports about itself for /readyz. */
export interface ComponentHealth {
  status: 'up' | 'degraded' | 'down';
  /** What an operator reads on /readyz: the component's own words, never a raw error. */
  detail?: string;
  /** The raw error behind it (addresses, driver messages): logged, never served. */
  cause?: string;
}
