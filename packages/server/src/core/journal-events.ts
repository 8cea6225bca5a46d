import { z } from 'zod';

/**
 * Internal topics where long-running jobs (generations, tasks) are journalled, so that any
 * instance can tell who owns a job and a starting instance can find the jobs its predecessor left
 * unfinished. Never streamed to clients nor publishable through the API (see sse/topic-access.ts).
 */
export const GENERATION_JOURNAL_TOPIC = 'ai-generations';
export const TASK_JOURNAL_TOPIC = 'tasks';
/**
 * Where instances ask each other to stop a job (job-cancels.ts): internal like the journals, so
 * nothing outside the server can publish there, and live only (never stored).
 */
export const JOB_CONTROL_TOPIC = 'job-control';
export const JOURNAL_TOPICS: ReadonlySet<string> = new Set([
  GENERATION_JOURNAL_TOPIC,
  TASK_JOURNAL_TOPIC,
  JOB_CONTROL_TOPIC,
]);

const jobId = z.string().min(1).max(128);
const userId = z.string().min(1).max(256);

/**
 * The journal's own event types: not part of the client catalogue (no client ever sees them), so
 * they may hold what a job needs to be continued — its request, its progress — without widening
 * the public payloads. Published only on {@link JOURNAL_TOPICS}: `started` and `checkpoint` on the
 * journals, always critical (stored); `cancel` on the control topic, live only.
 */
export const JOURNAL_EVENT_SCHEMAS = {
  /** A job was accepted; `request` is what it needs to run again (a generation's prompt). */
  'journal.started': z.strictObject({ jobId, userId, request: z.record(z.string(), z.unknown()) }),
  /** A job was handed over by a stopping instance; `state` is where it stood. */
  'journal.checkpoint': z.strictObject({ jobId, userId, state: z.record(z.string(), z.unknown()) }),
  /**
   * Stop a job: its outcome (`cancelled`) is already published by the instance that took the
   * cancel request; the instance running the job stops it without publishing another. Only on
   * {@link JOB_CONTROL_TOPIC}.
   */
  'journal.cancel': z.strictObject({ jobId, userId }),
} as const;

/** Every journal event type. */
export type JournalEventType = keyof typeof JOURNAL_EVENT_SCHEMAS;

/** The payload of journal event `TType`. */
export type JournalPayload<TType extends JournalEventType> = z.infer<(typeof JOURNAL_EVENT_SCHEMAS)[TType]>;

/** Whether `type` is a journal event type. */
export function isJournalEventType(type: string): type is JournalEventType {
  return Object.hasOwn(JOURNAL_EVENT_SCHEMAS, type);
}

/** Outcome of {@link validateJournalEvent}, shaped like the catalogue's validation. */
export type JournalValidation = { ok: true; type: JournalEventType; payload: unknown } | { ok: false; message: string };

/** Checks a journal event: its type only on its topics, its payload against its schema. */
export function validateJournalEvent(topic: string, type: JournalEventType, payload: unknown): JournalValidation {
  const isControl = type === 'journal.cancel';
  if (!JOURNAL_TOPICS.has(topic) || isControl !== (topic === JOB_CONTROL_TOPIC)) {
    return { ok: false, message: `"${type}" is internal to the job journal and cannot go on topic "${topic}"` };
  }
  const result = JOURNAL_EVENT_SCHEMAS[type].safeParse(payload);
  if (!result.success)
    return { ok: false, message: `payload of "${type}" is invalid: ${z.prettifyError(result.error)}` };
  return { ok: true, type, payload: result.data };
}
