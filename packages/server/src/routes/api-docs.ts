/**
 * The API reference at /docs (Swagger UI) and /docs/json (OpenAPI 3.1), generated from the code's
 * own schemas: the routes of api-operations.ts and the event catalogue of packages/protocol. The
 * routes keep validating with zod themselves (parse-input.ts), so @fastify/swagger runs in static
 * mode and only serves this document.
 */
import swagger, { type StaticDocumentSpec } from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import {
  CONTROL_EVENT_TYPES,
  EVENT_TYPES,
  TOPIC_MAX_LENGTH,
  TOPIC_PATTERN,
  isServerEmittedType,
  type ControlEventType,
  type ErrorCode,
  type EventType,
} from '@infinitescribe/protocol';
import { EVENT_SCHEMAS } from '@infinitescribe/protocol/schemas';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ERROR_STATUS } from '../core/errors.js';
import type { EventTypeDefinition } from '../services/events/event-types.js';
import type { TaskKindInfo } from '../services/tasks/task-kind.js';
import { API_OPERATIONS, type ApiOperation, type Credential } from './api-operations.js';
import { CONTROL_EVENT_SCHEMAS, errorBody, pollResponse, streamReset } from './api-schemas.js';

/** Where the UI is served; the document is at `${DOCS_PATH}/json`. */
export const DOCS_PATH = '/docs';

/** A JSON Schema or OpenAPI object, as plain JSON. */
export type JsonObject = { [key: string]: unknown };

/** The OpenAPI document this module builds. */
export interface ApiDocument {
  openapi: '3.1.0';
  info: JsonObject;
  tags: JsonObject[];
  paths: Record<string, Partial<Record<ApiOperation['method'], JsonObject>>>;
  components: { schemas: Record<string, JsonObject>; securitySchemes: Record<Credential, JsonObject> };
}

/** One line per catalogue type; a `Record` so a new event type cannot ship undocumented. */
const EVENT_DESCRIPTIONS: Record<EventType, string> = {
  notification: 'A message for the user. Published through `POST /api/events` (critical if the publisher asks).',
  'ai.generation.started': 'A generation began (`POST /api/ai/generations`). Live only: not stored.',
  'ai.generation.delta': 'New text of a generation, coalesced per AI_FLUSH_MS; `seq` counts deltas from 0.',
  'ai.generation.snapshot':
    'The text so far of a running generation, with the `seq` of its last delta: replaces its deltas in a ' +
    'resume, and is stored when a generation is handed over at shutdown. Live deltas continue at `seq + 1`.',
  'ai.generation.completed': 'Critical. The full text (and token usage when the provider reports it).',
  'ai.generation.failed':
    'Critical. Why it failed, and `text`: everything generated before it (final, like completed).',
  'ai.generation.cancelled': 'Critical. Cancelled by its owner.',
  'task.progress': 'Progress of a task; `percent` never decreases. A resume replays only the latest one per task.',
  'task.completed': 'Critical. The task’s result.',
  'task.failed': 'Critical. Why, and in which stage.',
  'task.cancelled': 'Critical. Cancelled by its owner.',
};

const CONTROL_DESCRIPTIONS: Record<ControlEventType, string> = {
  'connection.established': 'First event of every stream.',
  heartbeat: 'Every HEARTBEAT_MS; a silent stream is dead.',
  'stream.reset': 'The resume point is unknown (`unknown_id`: refetch state) or older than the hot log (`gap`).',
  'stream.resumed': 'Ends every resume; `complete: false` exactly when something was lost.',
  'auth.expiring': 'AUTH_EXPIRY_WARNING_MS before the token expires: refresh the stream.',
  'auth.expired': 'The token expired unrefreshed; the stream closes.',
};

/** What each error code means to a caller; a `Record` so a new code cannot ship undocumented. */
const ERROR_MEANINGS: Record<ErrorCode, string> = {
  invalid_json: 'the body is not JSON',
  invalid_event: 'unknown event type, payload failing its schema, or bad topic',
  invalid_request: 'a parameter or body field is invalid',
  unauthorized: 'missing, malformed, forged or expired credentials; a reused ticket',
  forbidden: 'authenticated, but not allowed (scope, other user, server-internal topic)',
  forbidden_topic: 'the token does not grant a requested topic, or its publish_topics claim does not cover the topic',
  forbidden_type: 'the event type is published by the server only (`ai.generation.*`, `task.*`)',
  not_found: 'no such resource for this user',
  request_timeout: 'the request (headers and body) did not arrive within REQUEST_TIMEOUT_MS',
  payload_too_large: 'body over 64 KiB',
  url_too_long: 'a path parameter is longer than the server accepts',
  headers_too_large: 'the request line and headers are over 16 KiB',
  too_many_connections: 'stream limit per user or per IP reached (see Retry-After)',
  rate_limited:
    'publish rate (per token, per topic), or running generations/tasks per user, over the limit (see Retry-After)',
  idempotency_key_in_flight: 'a request with this Idempotency-Key is still running (see Retry-After)',
  idempotency_key_reused: 'this Idempotency-Key was used with another body',
  store_unavailable: 'the store is down: the critical event was not stored (retry)',
  bus_unavailable: 'the bus (Redis) is down or unreachable for this operation (retry)',
  auth_unavailable:
    'the identity provider’s keys (JWKS) cannot be fetched to check this token (retry after Retry-After)',
  shutting_down: 'this instance is stopping: reconnect, another instance answers',
  internal_error: 'a bug or an unexpected failure (logged)',
};

const ref = (name: string): JsonObject => ({ $ref: `#/components/schemas/${name}` });

/** What the document describes of one server: its task kinds and the host's own event types. */
export interface ApiDocumentInput {
  taskKinds: readonly TaskKindInfo[];
  eventTypes?: readonly EventTypeDefinition[];
}

/** One event type as documented: built in (from the protocol's catalogue) or the host's own. */
interface DocumentedType {
  type: string;
  schema: z.ZodType;
  description: string;
  publishable: boolean;
}

function documentedTypes(eventTypes: readonly EventTypeDefinition[]): DocumentedType[] {
  return [
    ...EVENT_TYPES.map((type) => ({
      type,
      schema: EVENT_SCHEMAS[type] as z.ZodType,
      description: EVENT_DESCRIPTIONS[type],
      publishable: !isServerEmittedType(type),
    })),
    ...eventTypes.map((definition) => ({
      type: definition.name,
      schema: definition.schema,
      description: `${definition.description ?? 'An event type of this server’s own.'}${definition.critical ? ' Critical unless the publish says otherwise.' : ''}`,
      publishable: true,
    })),
  ];
}

function toJsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonObject {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' });
  return rest;
}

/**
 * The OpenAPI 3.1 document of the whole HTTP API and the stream's events, with the task kinds this
 * server offers (`TaskRequest` is one schema per kind).
 */
export function buildApiDocument(input: ApiDocumentInput): ApiDocument {
  const types = documentedTypes(input.eventTypes ?? []);
  const paths: ApiDocument['paths'] = {};
  for (const operation of API_OPERATIONS) {
    paths[operation.path] = { ...paths[operation.path], [operation.method]: operationObject(operation, types) };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'InfiniteScribe Realtime',
      version: '1',
      description:
        'Server-Sent Events for an AI writing assistant: AI text token by token, task progress and ' +
        'notifications, resumed after any disconnect with nothing lost and nothing duplicated. ' +
        'Every error is `{"error": {"code", "message"}}`. The event catalogue is under ' +
        '`components.schemas` (`payload.*`, `envelope.*`, `control.*`) and in the stream’s `x-sse-events`.',
    },
    tags: [
      { name: 'auth', description: 'Tokens and stream tickets' },
      { name: 'stream', description: 'The SSE stream, its refresh, and the long-poll fallback' },
      { name: 'events', description: 'Publishing' },
      { name: 'ai', description: 'AI generations' },
      { name: 'tasks', description: 'Long-running, multi-stage tasks' },
      { name: 'operations', description: 'Health, readiness and metrics' },
    ],
    paths,
    components: { schemas: componentSchemas(input.taskKinds, types), securitySchemes: SECURITY_SCHEMES },
  };
}

const SECURITY_SCHEMES: Record<Credential, JsonObject> = {
  bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Access token (`sub`, `exp`).' },
  cookie: { type: 'apiKey', in: 'cookie', name: 'access_token', description: 'The access token as a cookie.' },
  ticket: { type: 'apiKey', in: 'query', name: 'ticket', description: 'One-time ticket (stream only).' },
  metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN, when set.' },
};

function componentSchemas(
  taskKinds: readonly TaskKindInfo[],
  types: readonly DocumentedType[],
): Record<string, JsonObject> {
  const schemas: Record<string, JsonObject> = { ErrorBody: toJsonSchema(errorBody, 'output') };
  const mapping: Record<string, string> = {};
  for (const { type, schema, description } of types) {
    schemas[`payload.${type}`] = { ...toJsonSchema(schema, 'output'), description };
    schemas[`envelope.${type}`] = {
      type: 'object',
      description: `\`data:\` of \`event: ${type}\`.`,
      required: ['topic', 'type', 'ts', 'payload'],
      properties: {
        topic: { type: 'string' },
        type: { const: type },
        ts: { type: 'string', format: 'date-time', description: 'Publish time.' },
        payload: ref(`payload.${type}`),
      },
    };
    mapping[type] = `#/components/schemas/envelope.${type}`;
  }
  schemas['Envelope'] = {
    description: 'The `data:` of every published event.',
    oneOf: types.map(({ type }) => ref(`envelope.${type}`)),
    discriminator: { propertyName: 'type', mapping },
  };
  schemas['EnvelopeWithId'] = {
    allOf: [ref('Envelope'), { type: 'object', required: ['id'], properties: { id: { type: 'string' } } }],
  };
  for (const type of CONTROL_EVENT_TYPES) {
    schemas[`control.${type}`] = {
      ...toJsonSchema(CONTROL_EVENT_SCHEMAS[type], 'output'),
      description: CONTROL_DESCRIPTIONS[type],
    };
  }
  schemas['PublishRequest'] = {
    oneOf: types
      .filter(({ publishable }) => publishable)
      .map(({ type }) => ({
        type: 'object',
        title: type,
        required: ['topic', 'type', 'payload'],
        additionalProperties: false,
        properties: {
          topic: { type: 'string', pattern: TOPIC_PATTERN.source, maxLength: TOPIC_MAX_LENGTH },
          type: { const: type },
          payload: ref(`payload.${type}`),
          critical: { type: 'boolean', description: 'Stored durably before the 201.' },
        },
      })),
    discriminator: { propertyName: 'type' },
  };
  const poll = toJsonSchema(pollResponse, 'output');
  schemas['PollResponse'] = {
    ...poll,
    properties: {
      ...(poll['properties'] as JsonObject),
      events: { type: 'array', items: ref('EnvelopeWithId') },
      reset: toJsonSchema(streamReset, 'output'),
    },
  };
  schemas['TaskRequest'] = {
    oneOf: taskKinds.map((kind) => ({
      type: 'object',
      title: kind.kind,
      description: `${kind.description} Stages: ${kind.stages.join(', ')}.`,
      required: ['kind'],
      additionalProperties: false,
      properties: { kind: { const: kind.kind }, input: kind.input },
    })),
  };
  return schemas;
}

function operationObject(operation: ApiOperation, types: readonly DocumentedType[]): JsonObject {
  const isStream = operation.operationId === 'openStream';
  const security = operation.credentials.map((credential) => ({ [credential]: [] }));
  return {
    operationId: operation.operationId,
    tags: [operation.tag],
    summary: operation.summary,
    description: isStream ? streamDescription(types) : operation.description,
    // The metrics token applies only when it is configured.
    security: operation.credentials.includes('metricsToken') ? [{}, ...security] : security,
    parameters: [
      ...parameters(operation.params, 'path'),
      ...parameters(operation.query, 'query'),
      ...parameters(operation.headers, 'header'),
      ...(isStream
        ? [{ name: 'Last-Event-ID', in: 'header', schema: { type: 'string' }, description: 'Resume point (wins).' }]
        : []),
    ],
    ...(operation.body
      ? {
          requestBody: {
            required: operation.body.optional !== true,
            content: {
              'application/json': {
                schema: operation.body.jsonSchemaRef
                  ? ref(operation.body.jsonSchemaRef)
                  : toJsonSchema(operation.body.schema, 'input'),
                example: operation.body.example,
              },
            },
          },
        }
      : {}),
    responses: { ...successResponses(operation, isStream ? types : undefined), ...errorResponses(operation.errors) },
  };
}

function parameters(schema: z.ZodObject | undefined, location: 'path' | 'query' | 'header'): JsonObject[] {
  if (!schema) return [];
  const json = toJsonSchema(schema, 'input');
  const required = new Set((json['required'] as string[] | undefined) ?? []);
  return Object.entries((json['properties'] ?? {}) as Record<string, JsonObject>).map(([name, property]) => {
    const { description, ...propertySchema } = property;
    return {
      name,
      in: location,
      required: location === 'path' || required.has(name),
      schema: propertySchema,
      ...(description === undefined ? {} : { description }),
    };
  });
}

/** `streamTypes`: the stream's published types, for the stream operation only. */
function successResponses(operation: ApiOperation, streamTypes: readonly DocumentedType[] | undefined): JsonObject {
  const isStream = streamTypes !== undefined;
  const responses: JsonObject = {};
  for (const [status, response] of Object.entries(operation.responses)) {
    const contentType = response.contentType ?? 'application/json';
    const schema = response.jsonSchemaRef
      ? ref(response.jsonSchemaRef)
      : response.schema
        ? toJsonSchema(response.schema, 'output')
        : { type: 'string' };
    responses[status] = {
      description: response.description,
      ...(isStream ? { headers: STREAM_HEADERS } : {}),
      content: { [contentType]: { schema, ...(streamTypes ? { 'x-sse-events': sseEvents(streamTypes) } : {}) } },
    };
  }
  return responses;
}

function errorResponses(codes: readonly ErrorCode[]): JsonObject {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) byStatus.set(ERROR_STATUS[code], [...(byStatus.get(ERROR_STATUS[code]) ?? []), code]);
  const responses: JsonObject = {};
  for (const [status, statusCodes] of [...byStatus].sort(([a], [b]) => a - b)) {
    const hasRetryAfter = statusCodes.some((code) =>
      ['too_many_connections', 'rate_limited', 'idempotency_key_in_flight'].includes(code),
    );
    responses[String(status)] = {
      description: statusCodes.map((code) => `\`${code}\`: ${ERROR_MEANINGS[code]}`).join('; '),
      ...(hasRetryAfter || status === 503 ? { headers: { 'Retry-After': { schema: { type: 'integer' } } } } : {}),
      content: { 'application/json': { schema: ref('ErrorBody') } },
    };
  }
  return responses;
}

const STREAM_HEADERS: JsonObject = {
  'Cache-Control': { schema: { const: 'no-cache, no-transform' } },
  'X-Accel-Buffering': { schema: { const: 'no' }, description: 'Tells nginx not to buffer.' },
};

/** Every frame the stream can carry, published (with `id:`) or control (without). */
function sseEvents(types: readonly DocumentedType[]): JsonObject {
  const events: JsonObject = {};
  for (const { type, description } of types) {
    events[type] = { kind: 'published', idLine: true, data: ref(`envelope.${type}`), description };
  }
  for (const type of CONTROL_EVENT_TYPES) {
    events[type] = {
      kind: 'control',
      idLine: false,
      data: ref(`control.${type}`),
      description: CONTROL_DESCRIPTIONS[type],
    };
  }
  return events;
}

const streamDescription = (types: readonly DocumentedType[]): string =>
  [
    'Credentials: `Authorization: Bearer <jwt>`, or `?ticket=` (EventSource), or the `access_token` cookie. ' +
      'Refusals (401, 403, 429, 503) come before the stream starts, as JSON.',
    '',
    'Frames: `retry: <RETRY_MS>` first. Published events: `id: <id>`, `event: <type>`, `data: <envelope>` ' +
      '(`{topic, type, ts, payload}`, one line). Control events: `event: <type>`, `data: <object>`, no `id:` ' +
      'line, so they never move the resume point.',
    '',
    'Resume: send the last id seen as `Last-Event-ID` (browsers do on reconnect) or `lastEventId`. ' +
      'The stream replays what its topics got after it, then goes live, with no gap and no duplicate, and ' +
      'ends the replay with `stream.resumed`. An id older than the hot log gives `stream.reset {gap}` and the ' +
      'critical events still stored; an unknown id gives `stream.reset {unknown_id}`. Never a 4xx for a bad id.',
    '',
    'Events (`x-sse-events` of the 200 response has each one’s `data` schema):',
    '',
    ...types.map(({ type, description }) => `- \`${type}\`: ${description}`),
    ...CONTROL_EVENT_TYPES.map((type) => `- \`${type}\` (control): ${CONTROL_DESCRIPTIONS[type]}`),
  ].join('\n');

/**
 * Serves the document at `/docs/json` (and `/docs/yaml`) and Swagger UI at `/docs`. Its routes
 * are hidden (`schema.hide`), like the static files: they are not part of the API.
 */
export async function registerApiDocs(app: FastifyInstance, input: ApiDocumentInput): Promise<void> {
  // @fastify/swagger's types know static documents up to OpenAPI 3.0; it serves a 3.1 one as is.
  const document = buildApiDocument(input) as unknown as StaticDocumentSpec['document'];
  await app.register(swagger, { mode: 'static', specification: { document } });
  await app.register(swaggerUi, { routePrefix: DOCS_PATH });
}
