import type { EventPayload, EventType } from './events.js';

/**
 * The `data:` of every published event: `{topic, type, ts, payload}`, one line of JSON.
 * Distributive over `TType`, so narrowing on `type` narrows `payload`.
 */
export type Envelope<TType extends EventType = EventType> = TType extends EventType
  ? { topic: string; type: TType; ts: string; payload: EventPayload<TType> }
  : never;

/** An envelope with its id, as the long-poll endpoint returns it. */
export type EnvelopeWithId<TType extends EventType = EventType> = Envelope<TType> & { id: string };
