import type { EventType } from '@infinitescribe/protocol';
import type { JournalEventType } from '../jobs/journal-events.js';

/**
 * One published event as the server keeps it: in the hot log, in the store, on the bus.
 * `id` is its position in the single id space (see event-id.ts); `payload` has passed the catalogue
 * (or, on the internal journal topics only, the journal's own schemas).
 */
export interface EventRecord {
  id: number;
  topic: string;
  type: EventType | JournalEventType;
  /** ISO-8601 publish time. */
  ts: string;
  payload: unknown;
  /** Critical events are persisted in the store before the publish is acknowledged. */
  critical: boolean;
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
