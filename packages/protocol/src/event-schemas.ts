import { z } from 'zod';
import { EVENT_TYPES, isEventType, type BuiltInEvents, type EventType } from './events.js';

const id = z.string().min(1).max(128);

/**
 * The event catalogue's schemas: publishing validates against them. Payload objects are strict so
 * a misspelt field is an error, not silently dropped data. The payload types themselves are in
 * events.ts (zod-free, for browsers); the check below ties each schema to its type.
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
} as const satisfies Record<EventType, z.ZodType>;

/** Mutual assignability: enough to catch a field added, removed or retyped on either side. */
type Same<TLeft, TRight> = [TLeft] extends [TRight] ? ([TRight] extends [TLeft] ? true : false) : false;
type SchemaMismatches = {
  [TType in EventType]: Same<z.output<(typeof EVENT_SCHEMAS)[TType]>, BuiltInEvents[TType]> extends true
    ? never
    : TType;
}[EventType];
// Fails to compile, naming the type, when a schema no longer describes its payload type.
const _schemasMatchTypes: [SchemaMismatches] extends [never] ? true : SchemaMismatches = true;

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
