/**
 * The API reference at /docs (Swagger UI) and /docs/json (OpenAPI 3.1), generated from the route
 * definitions this server registers (route-definition.ts) and its event catalogue (packages/protocol's
 * plus the host's own types). The routes validate with their zod schemas themselves
 * (route-registry.ts), so @fastify/swagger runs in static mode and only serves this document.
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
import { CONTROL_EVENT_SCHEMAS, errorBody, pollResponse, streamReset } from './api-schemas.js';
import type { Credential, JsonObject, RouteDefinition } from './route-definition.js';

/** Where the UI is served; the document is at `${DOCS_PATH}/json`. */
export const DOCS_PATH = '/docs';

export type { JsonObject };

type OperationMethod = 'get' | 'post' | 'delete' | 'head';

/** The OpenAPI document this module builds. */
export interface ApiDocument {
  openapi: '3.1.0';
  info: JsonObject;
  tags: JsonObject[];
  paths: Record<string, Partial<Record<OperationMethod, JsonObject>>>;
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

/** What the document describes of one server: its routes and the host's own event types. */
export interface ApiDocumentInput {
  routes: readonly RouteDefinition[];
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
 * The OpenAPI 3.1 document of the routes and the stream's events. A route's body can bring a
 * component of its own (the task kinds' `TaskRequest`).
 */
export function buildApiDocument(input: ApiDocumentInput): ApiDocument {
  const types = documentedTypes(input.eventTypes ?? []);
  const schemas = componentSchemas(types);
  const paths: ApiDocument['paths'] = {};
  for (const route of input.routes) {
    const path = route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const method = route.method.toLowerCase() as OperationMethod;
    paths[path] = { ...paths[path], [method]: operationObject(route, types, schemas) };
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
    components: { schemas, securitySchemes: SECURITY_SCHEMES },
  };
}

const SECURITY_SCHEMES: Record<Credential, JsonObject> = {
  bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Access token (`sub`, `exp`).' },
  cookie: { type: 'apiKey', in: 'cookie', name: 'access_token', description: 'The access token as a cookie.' },
  ticket: { type: 'apiKey', in: 'query', name: 'ticket', description: 'One-time ticket (stream only).' },
  metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN, when set.' },
};

function componentSchemas(types: readonly DocumentedType[]): Record<string, JsonObject> {
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
  return schemas;
}

/** `schemas`: the document's components, to which a route may add its body's. */
function operationObject(
  route: RouteDefinition,
  types: readonly DocumentedType[],
  schemas: Record<string, JsonObject>,
): JsonObject {
  // A GET answered with an event stream carries the event catalogue: its frames and their list.
  const isStream =
    route.method === 'GET' && Object.values(route.answers).some((answer) => answer.contentType === 'text/event-stream');
  const security = route.credentials.map((credential) => ({ [credential]: [] }));
  return {
    operationId: route.operationId,
    tags: [route.tag],
    summary: route.summary,
    description: isStream ? `${route.description ?? ''}\n\n${streamEventList(types)}` : route.description,
    // The metrics token applies only when it is configured.
    security: route.credentials.includes('metricsToken') ? [{}, ...security] : security,
    parameters: [
      ...parameters(route.params, 'path'),
      ...parameters(route.query, 'query'),
      ...parameters(route.headers, 'header'),
    ],
    ...(route.body
      ? {
          requestBody: {
            required: true,
            content: {
              'application/json': { schema: bodySchema(route.body, schemas), example: route.body.example },
            },
          },
        }
      : {}),
    responses: { ...successResponses(route, isStream ? types : undefined), ...errorResponses(route.errors) },
  };
}

/** The JSON Schema of a body as documented (see `RouteBody.document`). */
function bodySchema(body: NonNullable<RouteDefinition['body']>, schemas: Record<string, JsonObject>): JsonObject {
  const document = body.document;
  if (document === undefined) return toJsonSchema(body.schema, 'input');
  if ('ref' in document) return ref(document.ref);
  if (document.component === undefined) return document.schema;
  schemas[document.component] = document.schema;
  return ref(document.component);
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
function successResponses(route: RouteDefinition, streamTypes: readonly DocumentedType[] | undefined): JsonObject {
  const responses: JsonObject = {};
  for (const [status, answer] of Object.entries(route.answers)) {
    // A HEAD answers headers only.
    if (route.method === 'HEAD') {
      responses[status] = { description: answer.description };
      continue;
    }
    const contentType = answer.contentType ?? 'application/json';
    const schema = answer.jsonSchemaRef
      ? ref(answer.jsonSchemaRef)
      : answer.schema
        ? toJsonSchema(answer.schema, 'output')
        : { type: 'string' };
    responses[status] = {
      description: answer.description,
      ...(streamTypes ? { headers: STREAM_HEADERS } : {}),
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

/** The stream's list of events, after its route's own description. */
const streamEventList = (types: readonly DocumentedType[]): string =>
  [
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
