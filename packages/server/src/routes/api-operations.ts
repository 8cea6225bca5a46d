/**
 * Every route of the HTTP API as data: credentials, inputs, answers (zod schemas) and error codes.
 * api-docs.ts turns it into the OpenAPI document served at /docs; the tests check it against the
 * routes the app really registers and the answers they really give.
 */
import type { ErrorCode } from '@infinitescribe/protocol';
import type { z } from 'zod';
import * as api from './api-schemas.js';

/** How a route accepts credentials (OpenAPI security schemes of the same names). */
export type Credential = 'bearer' | 'cookie' | 'ticket' | 'metricsToken';

/** One documented answer. `schema` validates the JSON body; other content types describe themselves. */
export interface ApiResponse {
  description: string;
  schema?: z.ZodType;
  /** Stands in for the JSON Schema generated from `schema` where that cannot say enough (envelopes). */
  jsonSchemaRef?: string;
  /** Non-JSON body (`text/event-stream`, Prometheus text). */
  contentType?: string;
}

/** One route. `path` uses OpenAPI's `{param}`; Fastify's `:param` is derived from it. */
export interface ApiOperation {
  method: 'get' | 'post' | 'delete';
  path: string;
  operationId: string;
  tag: 'auth' | 'stream' | 'events' | 'ai' | 'tasks' | 'operations';
  summary: string;
  description?: string;
  /** Any one of these is accepted; empty means public. */
  credentials: readonly Credential[];
  params?: z.ZodObject;
  query?: z.ZodObject;
  headers?: z.ZodObject;
  body?: { schema: z.ZodType; example: unknown; jsonSchemaRef?: string; optional?: boolean };
  responses: Record<number, ApiResponse>;
  errors: readonly ErrorCode[];
}

const USER_AUTH: readonly Credential[] = ['bearer', 'cookie'];
/**
 * Every route that authenticates can also fail its authentication, or find the identity
 * provider's keys unreachable (JWKS mode: 503, retry).
 */
const AUTH_ERRORS: readonly ErrorCode[] = ['unauthorized', 'auth_unavailable'];
/** A cookie-authenticated request that changes something, sent from another site's page. */
const CROSS_SITE_ERRORS: readonly ErrorCode[] = ['forbidden'];
/** Starting a generation or a task: a validated body, per-user limits, a journalled start. */
const JOB_START_ERRORS: readonly ErrorCode[] = [
  ...AUTH_ERRORS,
  ...CROSS_SITE_ERRORS,
  'invalid_json',
  'invalid_request',
  'rate_limited',
  'store_unavailable',
  'bus_unavailable',
  'shutting_down',
];
/** Reading or cancelling a generation or a task by id (another user's is `not_found` too). */
const JOB_BY_ID_ERRORS: readonly ErrorCode[] = [...AUTH_ERRORS, 'invalid_request', 'not_found'];
/** Cancelling one: a POST, so a cookie from another site is refused too. */
const JOB_CANCEL_ERRORS: readonly ErrorCode[] = [...JOB_BY_ID_ERRORS, ...CROSS_SITE_ERRORS];

/** The API, in the order /docs shows it. */
export const API_OPERATIONS: readonly ApiOperation[] = [
  {
    method: 'post',
    path: '/api/auth/dev-token',
    operationId: 'createDevToken',
    tag: 'auth',
    summary: 'Sign a development access token',
    description:
      'Registered only with AUTH_DEV_LOGIN (default outside NODE_ENV=production) in HS256 mode. ' +
      'Signs with JWT_SECRET; never expose it in production.',
    credentials: [],
    body: { schema: api.devTokenRequest, example: { userId: 'u1', scope: 'events:publish' } },
    responses: { 200: { description: 'A signed token.', schema: api.devTokenResponse } },
    errors: ['invalid_json', 'invalid_request'],
  },
  {
    method: 'post',
    path: '/api/sse/ticket',
    operationId: 'createStreamTicket',
    tag: 'auth',
    summary: 'Exchange the token for a one-time stream ticket',
    description:
      'For the browser EventSource, which cannot send headers: the ticket opens one stream ' +
      '(`GET /api/sse/stream?ticket=`) with the same user and topics, once, within TICKET_TTL_MS. ' +
      'Tickets do not open polls or call the API. Empty body.',
    credentials: USER_AUTH,
    responses: { 200: { description: 'A ticket.', schema: api.ticketResponse } },
    errors: [...AUTH_ERRORS, ...CROSS_SITE_ERRORS, 'rate_limited', 'bus_unavailable'],
  },
  {
    method: 'get',
    path: '/api/sse/stream',
    operationId: 'openStream',
    tag: 'stream',
    summary: 'Open the event stream (Server-Sent Events)',
    credentials: ['bearer', 'ticket', 'cookie'],
    query: api.streamQuery,
    responses: {
      200: {
        description:
          'The stream: `retry:` first, then `connection.established`, the replay (when resuming) ' +
          'ending with `stream.resumed`, then live events. See `x-sse-events` for every frame.',
        contentType: 'text/event-stream',
      },
    },
    errors: [
      ...AUTH_ERRORS,
      'invalid_request',
      'forbidden_topic',
      'too_many_connections',
      'bus_unavailable',
      'shutting_down',
    ],
  },
  {
    method: 'post',
    path: '/api/sse/connections/{connectionId}/refresh',
    operationId: 'refreshStream',
    tag: 'stream',
    summary: 'Extend a live stream with a fresh token',
    description:
      'After `auth.expiring`: a fresh Bearer token of the same user moves the stream’s expiry ' +
      'without reconnecting. The stream must be open on the instance that answers.',
    credentials: USER_AUTH,
    params: api.refreshParams,
    responses: { 200: { description: 'The new expiry.', schema: api.refreshResponse } },
    errors: [...AUTH_ERRORS, 'forbidden', 'forbidden_topic', 'not_found'],
  },
  {
    method: 'get',
    path: '/api/sse/poll',
    operationId: 'poll',
    tag: 'stream',
    summary: 'Long-poll fallback',
    description:
      'For networks that buffer streams: same topics, ids and reset rules as the stream. Answers ' +
      'at once with what `after` missed, else waits up to `timeoutMs` for the next events.',
    credentials: USER_AUTH,
    query: api.pollQuery,
    responses: {
      200: { description: 'Events after `after`.', schema: api.pollResponse, jsonSchemaRef: 'PollResponse' },
    },
    errors: [...AUTH_ERRORS, 'invalid_request', 'forbidden_topic', 'too_many_connections'],
  },
  {
    method: 'post',
    path: '/api/events',
    operationId: 'publishEvent',
    tag: 'events',
    summary: 'Publish an event',
    description:
      'Needs the `events:publish` scope. The payload must pass its type’s schema (see ' +
      '`PublishRequest`). 202 once fanned out; with `critical: true`, 201 only once stored ' +
      'durably. Body at most 64 KiB. Per PUBLISH_RATE_WINDOW_MS: PUBLISH_RATE_MAX per user token, ' +
      'PUBLISH_RATE_MAX_SERVICE per service token (scope `events:service`), PUBLISH_TOPIC_RATE_MAX per ' +
      'topic. With `Idempotency-Key`, a retry within 24 h gets the first answer again (same status ' +
      'and id, header `Idempotent-Replayed: true`) and the event exists once. Server-emitted types ' +
      '(`ai.generation.*`, `task.*`) are refused (403 `forbidden_type`); a token with a ' +
      '`publish_topics` claim publishes only to the topics its patterns match.',
    credentials: USER_AUTH,
    headers: api.publishHeaders,
    body: {
      schema: api.publishRequest,
      jsonSchemaRef: 'PublishRequest',
      example: { topic: 'user:u1', type: 'notification', payload: { title: 'Hello', level: 'info' } },
    },
    responses: {
      201: { description: 'Critical event, stored.', schema: api.publishResponse },
      202: { description: 'Published (fanned out).', schema: api.publishResponse },
    },
    errors: [
      ...AUTH_ERRORS,
      'invalid_json',
      'invalid_event',
      'invalid_request',
      'forbidden',
      'forbidden_topic',
      'forbidden_type',
      'idempotency_key_in_flight',
      'payload_too_large',
      'idempotency_key_reused',
      'rate_limited',
      'store_unavailable',
      'bus_unavailable',
    ],
  },
  {
    method: 'post',
    path: '/api/ai/generations',
    operationId: 'startGeneration',
    tag: 'ai',
    summary: 'Start an AI generation',
    description:
      'Runs server-side, independent of any connection; `ai.generation.*` events follow on ' +
      '`user:<sub>`. A conversation (`messages`, `system`, `temperature`, `model`) or one `prompt`. ' +
      'At most AI_MAX_CONCURRENT_PER_USER running per user.',
    credentials: USER_AUTH,
    body: {
      schema: api.generationRequest,
      example: {
        system: 'You are a concise writing assistant.',
        messages: [{ role: 'user', content: 'Write an opening line about the sea.' }],
        maxTokens: 40,
        conversationId: 'chat-sea-1',
      },
    },
    responses: { 202: { description: 'Started.', schema: api.generationCreated } },
    errors: JOB_START_ERRORS,
  },
  {
    method: 'get',
    path: '/api/ai/generations/{id}',
    operationId: 'getGeneration',
    tag: 'ai',
    summary: 'Where a generation stands (owner only)',
    credentials: USER_AUTH,
    params: api.idParams,
    responses: { 200: { description: 'Status and text so far.', schema: api.generationView } },
    errors: JOB_BY_ID_ERRORS,
  },
  {
    method: 'post',
    path: '/api/ai/generations/{id}/cancel',
    operationId: 'cancelGeneration',
    tag: 'ai',
    summary: 'Cancel a generation (aborts the provider request)',
    credentials: USER_AUTH,
    params: api.idParams,
    responses: { 202: { description: 'Cancelled, or already finished.', schema: api.generationCreated } },
    errors: JOB_CANCEL_ERRORS,
  },
  {
    method: 'get',
    path: '/api/ai/generations',
    operationId: 'listRunningGenerations',
    tag: 'ai',
    summary: 'Your generations still running',
    description:
      'Every generation of yours that is running now (chat turns or not), oldest first, with its text so far ' +
      'and the conversation it answers: a new tab or device finds what to resume. Only `status=running`.',
    credentials: USER_AUTH,
    query: api.runningGenerationsQuery,
    responses: { 200: { description: 'The running generations.', schema: api.runningGenerations } },
    errors: [...AUTH_ERRORS, 'invalid_request', 'store_unavailable'],
  },
  {
    method: 'get',
    path: '/api/ai/conversations',
    operationId: 'listConversations',
    tag: 'ai',
    summary: 'Your chat conversations, the most recently active first',
    description:
      'Conversations are made of generations started with a `conversationId` (one turn each), kept ' +
      'CONVERSATION_RETENTION_MS after their last turn. Paginated: pass `nextCursor` as `cursor`.',
    credentials: USER_AUTH,
    query: api.conversationsQuery,
    responses: { 200: { description: 'One page of conversations.', schema: api.conversationsPage } },
    errors: [...AUTH_ERRORS, 'invalid_request', 'store_unavailable'],
  },
  {
    method: 'get',
    path: '/api/ai/conversations/{id}',
    operationId: 'getConversation',
    tag: 'ai',
    summary: 'A conversation with its turns (owner only)',
    description:
      'Turns oldest first: the user message and the answer (the text so far while it runs). ' +
      '`runningGenerationId` names the generation still answering, to resume its stream.',
    credentials: USER_AUTH,
    params: api.conversationIdParams,
    responses: { 200: { description: 'The conversation.', schema: api.conversationView } },
    errors: [...JOB_BY_ID_ERRORS, 'store_unavailable'],
  },
  {
    method: 'delete',
    path: '/api/ai/conversations/{id}',
    operationId: 'deleteConversation',
    tag: 'ai',
    summary: 'Delete a conversation (owner only); its running answer is cancelled',
    credentials: USER_AUTH,
    params: api.conversationIdParams,
    responses: { 204: { description: 'Deleted.' } },
    errors: [...JOB_CANCEL_ERRORS, 'store_unavailable'],
  },
  {
    method: 'get',
    path: '/api/ai/provider',
    operationId: 'getProvider',
    tag: 'ai',
    summary: 'Which AI provider this server uses',
    credentials: USER_AUTH,
    responses: { 200: { description: 'The provider.', schema: api.providerInfo } },
    errors: [...AUTH_ERRORS],
  },
  {
    method: 'get',
    path: '/api/tasks/kinds',
    operationId: 'listTaskKinds',
    tag: 'tasks',
    summary: 'The task kinds, with their stages and input JSON Schema',
    credentials: USER_AUTH,
    responses: { 200: { description: 'Every kind.', schema: api.taskKinds } },
    errors: [...AUTH_ERRORS],
  },
  {
    method: 'post',
    path: '/api/tasks',
    operationId: 'startTask',
    tag: 'tasks',
    summary: 'Start a long-running task',
    description:
      'Runs server-side; `task.*` events follow on `user:<sub>`. TASK_MAX_CONCURRENT_PER_USER run ' +
      'at once, up to TASK_MAX_QUEUED_PER_USER more wait as `queued`.',
    credentials: USER_AUTH,
    body: {
      schema: api.taskRequest,
      jsonSchemaRef: 'TaskRequest',
      example: { kind: 'demo', input: { stages: 2, stageMs: 100 } },
    },
    responses: { 202: { description: 'Accepted (running or queued).', schema: api.taskCreated } },
    errors: JOB_START_ERRORS,
  },
  {
    method: 'get',
    path: '/api/tasks/{id}',
    operationId: 'getTask',
    tag: 'tasks',
    summary: 'Where a task stands (owner only)',
    credentials: USER_AUTH,
    params: api.idParams,
    responses: { 200: { description: 'The task.', schema: api.taskView } },
    errors: JOB_BY_ID_ERRORS,
  },
  {
    method: 'post',
    path: '/api/tasks/{id}/cancel',
    operationId: 'cancelTask',
    tag: 'tasks',
    summary: 'Cancel a task',
    credentials: USER_AUTH,
    params: api.idParams,
    responses: { 202: { description: 'Cancelled, or already finished.', schema: api.taskCreated } },
    errors: JOB_CANCEL_ERRORS,
  },
  {
    method: 'get',
    path: '/healthz',
    operationId: 'liveness',
    tag: 'operations',
    summary: 'Liveness: 200 while the process runs',
    credentials: [],
    responses: { 200: { description: 'Alive.', schema: api.liveness } },
    errors: [],
  },
  {
    method: 'get',
    path: '/readyz',
    operationId: 'readiness',
    tag: 'operations',
    summary: 'Readiness: ok, degraded (still serving), or 503',
    description:
      '503 only when this instance cannot serve streams (shutting down, bus down or wedged). A ' +
      'store that is down, or Redis unreachable (local delivery), is `degraded` with 200.',
    credentials: [],
    responses: {
      200: { description: '`ok` or `degraded`.', schema: api.readiness },
      503: { description: '`unavailable`: take this instance out of rotation.', schema: api.readiness },
    },
    errors: [],
  },
  {
    method: 'get',
    path: '/metrics',
    operationId: 'metrics',
    tag: 'operations',
    summary: 'Prometheus metrics',
    description: 'Public unless METRICS_TOKEN is set; then `Authorization: Bearer <METRICS_TOKEN>`.',
    credentials: ['metricsToken'],
    responses: { 200: { description: 'Prometheus text format 0.0.4.', contentType: 'text/plain; version=0.0.4' } },
    errors: ['unauthorized'],
  },
];
