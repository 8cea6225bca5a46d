import type { BuiltInEvents, EventMap, EventType } from './events.js';

/**
 * One published event as a subscriber receives it: `{ id, type, topic, ts, payload }`, typed by an
 * event map (the built-in catalogue by default, or {@link WithBuiltIns} of an app's own).
 * Distributive over `TType`, so narrowing on `type` narrows `payload`.
 * @example
 * type AppEvents = { 'comment.added': { docId: string; text: string } };
 * const show = (event: PublishedEvent<AppEvents, 'comment.added'>) => event.payload.text;
 */
export type PublishedEvent<
  TEvents extends EventMap = BuiltInEvents,
  TType extends keyof TEvents & string = keyof TEvents & string,
> = TType extends string ? { id: string; topic: string; type: TType; ts: string; payload: TEvents[TType] } : never;

/**
 * The `data:` of every published event: `{topic, type, ts, payload}`, one line of JSON.
 * Distributive over `TType`, so narrowing on `type` narrows `payload`.
 */
export type Envelope<TType extends EventType = EventType> = TType extends EventType
  ? { topic: string; type: TType; ts: string; payload: BuiltInEvents[TType] }
  : never;

/** An envelope with its id, as the long-poll endpoint returns it and a subscriber receives it. */
export type EnvelopeWithId<TType extends EventType = EventType> = PublishedEvent<BuiltInEvents, TType>;
