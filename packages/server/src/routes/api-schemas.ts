/**
 * zod schemas of the HTTP API's requests and answers, used by the route definitions (which
 * validate input with them and document them at /docs) and the tests that hold the routes to them. Event payloads are not here: they come from the catalogue
 * of packages/protocol, the one the publisher validates against.
 *
 * Answers are tied to the types the handlers return by the compile-time check at the bottom, so
 * a handler type that changes without its schema fails `tsc`. Request schemas are the routes'
 * own: the routes validate with these, so the document cannot drift from what they accept.
 */
import {
  CONVERSATION_ID_PATTERN,
  ERROR_CODES,
  MAX_CONVERSATIONS_PAGE,
  MAX_GENERATION_TOKENS,
  USER_ID_MAX_LENGTH,
  isServableUserId,
  isValidTopic,
  type ControlEvents,
  type ConversationView,
  type ConversationsPage,
  type DevTokenResponse,
  type ErrorBody,
  type GenerationView,
  type PollResponse,
  type PublishResponse,
  type RunningGenerationsResponse,
  type TaskKindInfo,
  type TaskView,
  type TicketResponse,
} from '@infinitescribe/protocol';
import { GENERATION_REQUEST_SCHEMA, validateEventPayload } from '@infinitescribe/protocol/schemas';
import { z } from 'zod';
import { PROVIDER_KINDS } from '../adapters/ai/ai-provider.js';
import type { ProviderView } from './generation-routes.js';
import { isValidPublishPattern } from '../core/publish-topics.js';
import type { ComponentHealth } from '../core/event-record.js';
import { IDEMPOTENCY_KEY_PATTERN } from './idempotency-hooks.js';

/** Longest prompt a task accepts, in characters. */
export const MAX_PROMPT_CHARS = 32_000;
/** Largest maxTokens a request may ask for. */
export const MAX_TOKENS_LIMIT = MAX_GENERATION_TOKENS;

const id = z.string().min(1).max(128);
const isoTime = z.string().meta({ format: 'date-time' });
/** Event ids are opaque strings to clients (docs/http-api.md): compared for equality only. */
const eventId = z.string().meta({ description: 'Opaque event id; compare for equality only.' });

export const errorBody = z.strictObject({
  error: z.strictObject({
    code: z.enum(ERROR_CODES),
    message: z.string().meta({ description: 'Human-readable; not for programs to parse.' }),
  }),
});

export const devTokenRequest = z.strictObject({
  userId: z.string().refine(isServableUserId, {
    message: `userId must be 1 to ${USER_ID_MAX_LENGTH} characters, without commas, whitespace or control characters`,
  }),
  topics: z
    .array(z.string().refine(isValidTopic, 'not a valid topic'))
    .max(100)
    .optional()
    .meta({ description: 'Extra topics the token grants (the `topics` claim).' }),
  scope: z.string().max(500).optional().meta({ description: 'Space-separated scopes, e.g. `events:publish`.' }),
  publishTopics: z
    .array(z.string().refine(isValidPublishPattern, 'not a valid topic pattern'))
    .max(100)
    .optional()
    .meta({ description: 'Where the token may publish (the `publish_topics` claim), e.g. `["doc:*", "user:{sub}"]`.' }),
  expiresIn: z.number().int().min(5).max(86_400).optional().meta({ description: 'Lifetime in seconds (3600).' }),
});
export const devTokenResponse = z.strictObject({ accessToken: z.string(), expiresIn: z.number().int() });

export const ticketResponse = z.strictObject({
  ticket: z.string(),
  expiresIn: z.number().int().meta({ description: 'Seconds (TICKET_TTL_MS / 1000).' }),
});

/**
 * The stream's query (and its HEAD's). Not strict: a cache-busting parameter of a proxy or page
 * is no error. A repeated parameter is (`?topics=a&topics=b`): which one would win is a guess.
 */
export const streamQuery = z.object({
  topics: z.string({ error: 'topics must be a comma-separated string' }).optional().meta({
    description: 'Comma-separated topics. Default: `user:<sub>` plus every topic the token grants.',
  }),
  lastEventId: z.string({ error: 'lastEventId must be one id' }).optional().meta({
    description: 'Resume point for a fresh page (same meaning as the `Last-Event-ID` header, which wins).',
  }),
  ticket: z
    .string({ error: 'ticket must be one ticket' })
    .optional()
    .meta({ description: 'One-time ticket from `POST /api/sse/ticket` (EventSource).' }),
});
/** The stream's documented headers (read by the route itself: a header that is not one string is ignored). */
export const streamHeaders = z.object({
  'Last-Event-ID': z.string().optional().meta({ description: 'Resume point (wins).' }),
});

export const refreshParams = z.object({ connectionId: z.string() });
export const refreshResponse = z.strictObject({ connectionId: z.string(), expiresAt: isoTime });

/** Longest a poll waits for something new. */
const MAX_POLL_MS = 30_000;
export const pollQuery = z.object({
  after: z.string().max(200).optional().meta({ description: 'Last id seen. Absent: start at the current head.' }),
  timeoutMs: z.coerce.number().int().min(0).max(MAX_POLL_MS).default(25_000),
  topics: z.string().optional().meta({ description: 'Comma-separated topics, as for the stream.' }),
});

export const streamReset = z.strictObject({
  reason: z.enum(['unknown_id', 'gap']),
  since: eventId.optional().meta({ description: 'With `gap`: the oldest id still in the hot log.' }),
});

/** The route's check; the document shows the stricter per-type `PublishRequest` (api-docs.ts). */
export const publishRequest = z.strictObject({
  topic: z.string(),
  type: z.string(),
  payload: z.unknown(),
  critical: z.boolean().optional(),
});
export const publishResponse = z.strictObject({ id: eventId });
/** The optional headers of a publish. */
export const publishHeaders = z.object({
  'Idempotency-Key': z
    .string()
    .regex(IDEMPOTENCY_KEY_PATTERN)
    .optional()
    .describe(
      'Your key for this publish and its retries, scoped to your token’s `sub`: the same key with the ' +
        'same body within 24 h answers the first answer again; with another body, 422.',
    ),
});

/** An envelope as the poll answers it: with its id, and a payload that passes its type's schema. */
export const envelopeWithId = z
  .strictObject({ id: eventId, topic: z.string(), type: z.string(), ts: isoTime, payload: z.unknown() })
  .superRefine((envelope, context) => {
    const validation = validateEventPayload(envelope.type, envelope.payload);
    if (!validation.ok) context.addIssue({ code: 'custom', message: validation.message });
  });
export const pollResponse = z.strictObject({
  events: z.array(envelopeWithId),
  lastEventId: eventId.nullable(),
  reset: streamReset.optional(),
});

/** The wire schema (packages/protocol); the route adds the operator's model allow-list. */
export const generationRequest = GENERATION_REQUEST_SCHEMA;
/** {@link generationRequest} with `model` one of `models`, checked with the other fields (one answer names every problem). */
export function generationRequestAllowing(models: readonly string[]) {
  return generationRequest.refine((request) => request.model === undefined || models.includes(request.model), {
    message: `model must be one of ${models.join(', ')}`,
    path: ['model'],
    when: () => true,
  });
}
export const generationCreated = z.strictObject({ generationId: z.string() });
export const generationView = z.strictObject({
  generationId: z.string(),
  status: z.enum(['running', 'completed', 'failed', 'cancelled']),
  text: z.string().meta({ description: 'Text so far (all of it once completed).' }),
  seq: z.number().int().min(-1).meta({
    description:
      'Seq of the last delta included in text (-1 before the first): the deltas that follow line up with it.',
  }),
  error: z.string().optional().meta({ description: 'Why it failed.' }),
});
export const providerInfo = z.strictObject({
  kind: z
    .enum([...PROVIDER_KINDS, 'custom'])
    .meta({ description: 'AI_PROVIDER: which service generations come from (custom: a provider the host passed in).' }),
  label: z.string(),
  model: z.string().meta({ description: 'AI_MODEL: the model of a request that names none.' }),
  models: z.array(z.string()).meta({ description: 'Every model a request may name (AI_MODEL, then AI_MODELS).' }),
});

export const idParams = z.object({ id });

const generationStatus = z.enum(['running', 'completed', 'failed', 'cancelled']);
export const conversationIdParams = z.object({
  id: z.string().regex(CONVERSATION_ID_PATTERN, 'a conversation id is 1–128 characters of [0-9A-Za-z._:-]'),
});
export const conversationsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_CONVERSATIONS_PAGE).default(20),
  cursor: z.string().min(1).max(1_000).optional().meta({ description: '`nextCursor` of the previous page.' }),
});
const conversationSummaryShape = {
  conversationId: z.string(),
  title: z.string().meta({ description: 'The first user message, shortened.' }),
  createdAt: isoTime,
  updatedAt: isoTime.meta({ description: 'When its last turn was sent.' }),
  runningGenerationId: z
    .string()
    .optional()
    .meta({ description: 'The generation answering its last turn, while it runs: resume it by this id.' }),
};
export const conversationsPage = z.strictObject({
  conversations: z.array(z.strictObject({ ...conversationSummaryShape, turnCount: z.number().int().nonnegative() })),
  nextCursor: z
    .string()
    .optional()
    .meta({ description: 'Pass as `cursor` for the next, older page; absent on the last.' }),
});
export const conversationView = z.strictObject({
  ...conversationSummaryShape,
  turns: z.array(
    z.strictObject({
      generationId: z.string(),
      prompt: z.string().meta({ description: 'The user message of the turn.' }),
      status: generationStatus,
      text: z.string().meta({ description: 'The answer: all of it once settled, the text so far while running.' }),
      error: z.string().optional(),
      createdAt: isoTime,
    }),
  ),
});
export const runningGenerationsQuery = z.strictObject({
  status: z.literal('running').meta({ description: 'Only `running` is supported.' }),
});
export const runningGenerations = z.strictObject({
  generations: z.array(
    z.strictObject({
      generationId: z.string(),
      status: z.literal('running'),
      text: z.string().meta({ description: 'Text so far.' }),
      conversationId: z.string().optional().meta({ description: 'The conversation whose turn it answers.' }),
    }),
  ),
});

export const taskRequest = z.strictObject({
  kind: z.string().min(1).max(100).meta({ description: 'One of `GET /api/tasks/kinds`; unknown kinds are 400.' }),
  input: z.unknown().optional().meta({ description: 'Validated by the kind (its JSON Schema is in /kinds).' }),
});
export const taskCreated = z.strictObject({ taskId: z.string() });
export const taskKinds = z.strictObject({
  kinds: z.array(
    z.strictObject({
      kind: z.string(),
      description: z.string(),
      stages: z.array(z.string()),
      input: z.record(z.string(), z.unknown()).meta({ description: 'JSON Schema of `input`.' }),
    }),
  ),
});
export const taskView = z.strictObject({
  taskId: z.string(),
  kind: z.string(),
  status: z.enum(['queued', 'running', 'completed', 'failed', 'cancelled']),
  stage: z.string(),
  stageIndex: z.number().int(),
  stageCount: z.number().int(),
  percent: z.number(),
  message: z.string().optional(),
  result: z.unknown().optional(),
  error: z.string().optional(),
});

export const liveness = z.strictObject({ status: z.literal('ok') });
const componentHealth = z.strictObject({
  kind: z.string().meta({ description: '`memory` or `redis`; `pglite` or `postgres`.' }),
  status: z.enum(['up', 'degraded', 'down']),
  detail: z.string().optional(),
});
export const readiness = z.strictObject({
  status: z.enum(['ok', 'degraded', 'unavailable']),
  bus: componentHealth,
  store: componentHealth,
});

/** Control events (docs/http-api.md, "Streams"): a bare JSON object as `data:`, never an `id:` line. */
export const CONTROL_EVENT_SCHEMAS = {
  'connection.established': z.strictObject({
    connectionId: z.string(),
    instanceId: z.string(),
    topics: z.array(z.string()),
    lastEventId: eventId.optional().meta({
      description: 'Fresh streams only: the id this stream starts after; keep it as the first resume point.',
    }),
  }),
  heartbeat: z.strictObject({ ts: isoTime }),
  'stream.reset': streamReset,
  'stream.resumed': z.strictObject({
    replayed: z.number().int().nonnegative(),
    complete: z.boolean().meta({ description: 'False exactly when something was lost.' }),
  }),
  'auth.expiring': z.strictObject({ connectionId: z.string(), expiresAt: isoTime }),
  'auth.expired': z.strictObject({ connectionId: z.string() }),
} as const satisfies { [TType in keyof ControlEvents]: z.ZodType };

/** Mutual assignability: enough to catch a field added, removed or retyped on either side. */
type Same<TLeft, TRight> = [TLeft] extends [TRight] ? ([TRight] extends [TLeft] ? true : false) : false;
type Describes<TSchema extends z.ZodType, TType> = Same<z.output<TSchema>, TType>;
type EveryControlEventDescribed = [
  {
    [TType in keyof ControlEvents]: Describes<(typeof CONTROL_EVENT_SCHEMAS)[TType], ControlEvents[TType]>;
  }[keyof ControlEvents],
] extends [true]
  ? true
  : false;

// A `false` here names the schema that no longer describes what the code sends. (The poll
// answer's envelopes are checked at run time, against the catalogue, by the tests.)
const _schemasDescribeTheCode: [
  Describes<typeof errorBody, ErrorBody>,
  Describes<typeof devTokenResponse, DevTokenResponse>,
  Describes<typeof ticketResponse, TicketResponse>,
  Describes<typeof publishResponse, PublishResponse>,
  Describes<typeof generationView, GenerationView>,
  Describes<typeof conversationsPage, ConversationsPage>,
  Describes<typeof conversationView, ConversationView>,
  Describes<typeof runningGenerations, RunningGenerationsResponse>,
  Describes<typeof providerInfo, ProviderView>,
  Describes<(typeof taskKinds.shape.kinds)['element'], TaskKindInfo>,
  Describes<typeof taskView, TaskView>,
  Same<Omit<z.output<typeof componentHealth>, 'kind'>, ComponentHealth>,
  Same<z.output<typeof streamReset>, NonNullable<PollResponse['reset']>>,
  EveryControlEventDescribed,
] = [true, true, true, true, true, true, true, true, true, true, true, true, true, true];
