import { z } from 'zod';

const id = z.string().min(1).max(128);

/**
 * The event catalogue: every type that travels the event path, with its payload schema.
 * Publishing validates against it; clients narrow on `type` with {@link EventPayload}.
 * Payload objects are strict so a misspelt field is an error, not silently dropped data.
 */
export const EVENT_SCHEMAS = {
  notification: z.strictObject({
    title: z.string().min(1).max(500),
    body: z.string().max(20_000).optional(),
    level: z.enum(['info', 'success', 'warning', 'error']),
  }),
  'ai.generation.started': z.strictObject({ generationId: id, documentId: id.optional() }),
  'ai.generation.delta': z.strictObject({
    generationId: id,
    seq: z.number().int().nonnegative(),
    text: z.string(),
  }),
  'ai.generation.snapshot': z.strictObject({
    generationId: id,
    seq: z.number().int().min(-1),
    text: z.string(),
  }),
  'ai.generation.completed': z.strictObject({
    generationId: id,
    text: z.string(),
    usage: z
      .strictObject({
        promptTokens: z.number().int().nonnegative().optional(),
        completionTokens: z.number().int().nonnegative().optional(),
      })
      .optional(),
  }),
  // `text` (extension): everything generated before the failure, so a client need not re-fetch it.
  'ai.generation.failed': z.strictObject({ generationId: id, error: z.string(), text: z.string().optional() }),
  'ai.generation.cancelled': z.strictObject({ generationId: id }),
  'task.progress': z.strictObject({
    taskId: id,
    stage: z.string().min(1).max(200),
    stageIndex: z.number().int().nonnegative(),
    stageCount: z.number().int().positive(),
    percent: z.number().min(0).max(100),
    message: z.string().max(2_000).optional(),
  }),
  'task.completed': z.strictObject({ taskId: id, result: z.unknown().optional() }),
  'task.failed': z.strictObject({ taskId: id, error: z.string(), stage: z.string().optional() }),
  'task.cancelled': z.strictObject({ taskId: id }),
} as const;

/** Every event type of the catalogue. */
export type EventType = keyof typeof EVENT_SCHEMAS;

/** The payload type of event type `TType`. */
export type EventPayload<TType extends EventType> = z.infer<(typeof EVENT_SCHEMAS)[TType]>;

/** The catalogue's type names, in declaration order. */
export const EVENT_TYPES = Object.keys(EVENT_SCHEMAS) as EventType[];

/** Whether `type` names an event of the catalogue. */
export function isEventType(type: string): type is EventType {
  return Object.hasOwn(EVENT_SCHEMAS, type);
}

/** Outcome of {@link validateEventPayload}: the parsed payload, or a human-readable problem. */
export type PayloadValidation = { ok: true; type: EventType; payload: unknown } | { ok: false; message: string };

/**
 * Checks `payload` against the schema of `type`.
 * @example validateEventPayload('notification', { title: 'Hi', level: 'info' }).ok === true
 */
export function validateEventPayload(type: string, payload: unknown): PayloadValidation {
  if (!isEventType(type)) {
    return { ok: false, message: `unknown event type "${type}"; known types: ${EVENT_TYPES.join(', ')}` };
  }
  const result = EVENT_SCHEMAS[type].safeParse(payload);
  if (!result.success) {
    return { ok: false, message: `payload of "${type}" is invalid: ${z.prettifyError(result.error)}` };
  }
  return { ok: true, type, payload: result.data };
}
