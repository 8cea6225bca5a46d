/**
 * The event catalogue as types: every built-in type that travels the event path, with its payload.
 * Zod-free, so browsers get the names and types without the schemas (those are in
 * `@infinitescribe/protocol/schemas`, checked against these types at compile time).
 */

/** `notification`: a message for the user. */
export interface NotificationPayload {
  title: string;
  body?: string;
  level: 'info' | 'success' | 'warning' | 'error';
}

/** Token counts of a completed generation, when the provider reported them. */
export interface GenerationUsage {
  promptTokens?: number;
  completionTokens?: number;
}

/**
 * The built-in catalogue: event type → payload. An app's own types (registered on the server)
 * come on top of it, see {@link WithBuiltIns}.
 */
export interface BuiltInEvents {
  notification: NotificationPayload;
  'ai.generation.started': { generationId: string; documentId?: string };
  /** `seq` counts deltas from 0; `text` is the new text only. */
  'ai.generation.delta': { generationId: string; seq: number; text: string };
  /** The text so far, `seq` the seq of its last delta (`-1` before the first). */
  'ai.generation.snapshot': { generationId: string; seq: number; text: string };
  'ai.generation.completed': { generationId: string; text: string; usage?: GenerationUsage };
  /** `text` (extension): everything generated before the failure, so a client need not re-fetch it. */
  'ai.generation.failed': { generationId: string; error: string; text?: string };
  'ai.generation.cancelled': { generationId: string };
  'task.progress': {
    taskId: string;
    stage: string;
    stageIndex: number;
    stageCount: number;
    /** 0–100, never decreasing. */
    percent: number;
    message?: string;
  };
  'task.completed': { taskId: string; result?: unknown };
  'task.failed': { taskId: string; error: string; stage?: string };
  'task.cancelled': { taskId: string };
}

/** Every event type of the built-in catalogue. */
export type EventType = keyof BuiltInEvents;

/** The payload type of built-in event type `TType`. */
export type EventPayload<TType extends EventType> = BuiltInEvents[TType];

/**
 * An app's own event types: type name → payload type, as an interface or a type literal.
 * @example type AppEvents = { 'comment.added': { docId: string; text: string } };
 */
export type EventMap = object;

/**
 * The built-in catalogue plus the app's own types. A built-in name keeps its built-in payload
 * (the server refuses to register a type that shadows one).
 */
export type WithBuiltIns<TEvents extends EventMap> = {
  [TType in EventType | (keyof TEvents & string)]: TType extends EventType
    ? BuiltInEvents[TType]
    : TEvents[TType & keyof TEvents];
};

// A Record over the union forces one entry per type: a type added above and not here fails to compile.
const TYPES: Record<EventType, true> = {
  notification: true,
  'ai.generation.started': true,
  'ai.generation.delta': true,
  'ai.generation.snapshot': true,
  'ai.generation.completed': true,
  'ai.generation.failed': true,
  'ai.generation.cancelled': true,
  'task.progress': true,
  'task.completed': true,
  'task.failed': true,
  'task.cancelled': true,
};

/** The catalogue's type names, in declaration order. */
export const EVENT_TYPES = Object.keys(TYPES) as EventType[];

/** Whether `type` names an event of the built-in catalogue. */
export function isEventType(type: string): type is EventType {
  return Object.hasOwn(TYPES, type);
}
