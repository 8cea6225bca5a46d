import { CONTROL_EVENT_TYPES, EVENT_TYPES, isEventType, isServerEmittedType } from '@infinitescribe/protocol';
import { EVENT_SCHEMAS, validateEventPayload } from '@infinitescribe/protocol/schemas';
import type * as FastifyModule from 'fastify';
import type { RouteOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { buildApiDocument, type JsonObject } from '../src/routes/api-docs.js';
import { CONTROL_EVENT_SCHEMAS, errorBody } from '../src/routes/api-schemas.js';
import type { RouteDefinition } from '../src/routes/route-definition.js';
import { openStream, type StreamReader } from './helpers/sse-reader.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

// Every route the app registers, as Fastify's onRoute hook sees it: the hook is added to each
// instance the moment it is created, before buildApp registers anything.
const registered = vi.hoisted(() => [] as RouteOptions[]);
vi.mock('fastify', async (importOriginal) => {
  const actual = await importOriginal<typeof FastifyModule>();
  const create = (options?: FastifyModule.FastifyServerOptions) => {
    const app = actual.default(options);
    app.addHook('onRoute', (route) => void registered.push(route));
    return app;
  };
  return { ...actual, default: create as typeof actual.default };
});

type ApiDocumentJson = ReturnType<typeof buildApiDocument>;

/**
 * `METHOD /path/{param}` of every API route Fastify registered: hidden routes (static files, /docs)
 * and the HEAD Fastify adds to a GET by itself left out; a HEAD of its own counts.
 */
function registeredApiRoutes(): string[] {
  const routes = new Set<string>();
  for (const route of registered) {
    if (route.schema?.hide === true) continue;
    for (const method of [route.method].flat()) {
      if (method === 'HEAD' && route.config?.definition?.method !== 'HEAD') continue;
      routes.add(`${method} ${route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`);
    }
  }
  return [...routes].sort();
}

/** The definitions the app registered its routes from (each once: not the HEAD Fastify adds to a GET). */
function definitions(): RouteDefinition[] {
  return registered.flatMap((route) => {
    const definition = route.config?.definition;
    return definition !== undefined && [route.method].flat().includes(definition.method) ? [definition] : [];
  });
}

function documentedRoutes(document: ApiDocumentJson): string[] {
  return Object.entries(document.paths)
    .flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`))
    .sort();
}

/** Every `$ref` in `value`. */
function refsIn(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(refsIn);
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, inner]) =>
    key === '$ref' && typeof inner === 'string' ? [inner] : refsIn(inner),
  );
}

describe('API reference at /docs', () => {
  let server: TestApp;
  let document: ApiDocumentJson;

  beforeAll(async () => {
    server = await startTestApp();
    const response = await fetch(`${server.url}/docs/json`);
    expect(response.status).toBe(200);
    document = (await response.json()) as ApiDocumentJson;
  });
  afterAll(async () => {
    await server?.close();
  });

  it('documents every route the app registers, and no route it does not', () => {
    const routes = registeredApiRoutes();
    expect(routes).toContain('GET /api/sse/stream');
    expect(routes).toContain('HEAD /api/sse/stream');
    expect(routes.length).toBe(definitions().length);
    expect(documentedRoutes(document)).toEqual(routes);
  });

  it('serves the document the code builds, as OpenAPI 3.1 with every $ref resolvable', () => {
    expect(document).toEqual(JSON.parse(JSON.stringify(buildApiDocument({ routes: definitions() }))));
    expect(document.openapi).toBe('3.1.0');
    const schemas = document.components.schemas;
    for (const target of refsIn(document)) {
      expect(target).toMatch(/^#\/components\/schemas\//);
      expect(schemas[target.slice('#/components/schemas/'.length)], target).toBeDefined();
    }
  });

  it('lists every event type of the catalogue with its payload schema, on the stream and for publishing', () => {
    const schemas = document.components.schemas;
    const stream = document.paths['/api/sse/stream']?.get as JsonObject;
    const ok = (stream['responses'] as Record<string, JsonObject>)['200'];
    const media = (ok?.['content'] as Record<string, JsonObject>)['text/event-stream'];
    const sseEvents = media?.['x-sse-events'] as Record<string, { idLine: boolean; data: { $ref: string } }>;
    const publishable = (schemas['PublishRequest']?.['oneOf'] as { properties: { type: { const: string } } }[]).map(
      (variant) => variant.properties.type.const,
    );
    for (const type of EVENT_TYPES) {
      const { $schema: _dialect, ...payload } = z.toJSONSchema(EVENT_SCHEMAS[type]);
      expect(schemas[`payload.${type}`], type).toMatchObject(payload);
      expect(sseEvents[type], type).toEqual(
        expect.objectContaining({ idLine: true, data: { $ref: `#/components/schemas/envelope.${type}` } }),
      );
      // Server-emitted types are streamed but never publishable (403 forbidden_type).
      if (isServerEmittedType(type)) expect(publishable).not.toContain(type);
      else expect(publishable).toContain(type);
      expect(String(stream['description'])).toContain(`\`${type}\``);
    }
    for (const type of CONTROL_EVENT_TYPES) {
      expect(sseEvents[type], type).toEqual(
        expect.objectContaining({ idLine: false, data: { $ref: `#/components/schemas/control.${type}` } }),
      );
    }
    expect(Object.keys(sseEvents).sort()).toEqual([...EVENT_TYPES, ...CONTROL_EVENT_TYPES].sort());
  });

  it('serves Swagger UI as HTML at /docs, with its assets', async () => {
    for (const path of ['/docs', '/docs/']) {
      const response = await fetch(`${server.url}${path}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
      expect(await response.text()).toMatch(/swagger-ui/i);
    }
    const bundle = await fetch(`${server.url}/docs/static/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    await bundle.arrayBuffer();
    const yaml = await fetch(`${server.url}/docs/yaml`);
    expect(await yaml.text()).toContain('openapi: 3.1.0');
  });

  it('the documented examples work, and every answer has a documented status and shape', async () => {
    const called = new Set<string>();
    const call = async (
      operationId: string,
      request: { token?: string; params?: Record<string, string>; query?: Record<string, string>; body?: unknown },
    ): Promise<{ status: number; body: unknown }> => {
      const operation = definitions().find((candidate) => candidate.operationId === operationId);
      if (!operation) throw new Error(`no operation ${operationId}`);
      called.add(operationId);
      const path = operation.url.replace(/:(\w+)/g, (_match, name: string) => request.params?.[name] ?? '');
      const url = new URL(path, server.url);
      for (const [name, value] of Object.entries(request.query ?? {})) url.searchParams.set(name, value);
      const headers: Record<string, string> = {};
      if (request.token) headers['authorization'] = `Bearer ${request.token}`;
      if (request.body !== undefined) headers['content-type'] = 'application/json';
      const response = await fetch(url, {
        method: operation.method,
        headers,
        ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
      });
      const text = await response.text();
      return { status: response.status, body: checkAnswer(operation, response.status, text) };
    };

    const { body: issued } = await call('createDevToken', { body: example('createDevToken') });
    const token = (issued as { accessToken: string }).accessToken;
    const auth = { token };
    const userId = (example('createDevToken') as { userId: string }).userId;

    await call('liveness', {});
    await call('readiness', {});
    await call('metrics', {});
    await call('getProvider', auth);
    const { body: kinds } = await call('listTaskKinds', auth);
    const documentedKinds = (document.components.schemas['TaskRequest']?.['oneOf'] as { title: string }[]).map(
      (variant) => variant.title,
    );
    expect((kinds as { kinds: { kind: string }[] }).kinds.map((kind) => kind.kind)).toEqual(documentedKinds);

    expect((await call('checkStream', auth)).status).toBe(200);
    const { body: ticket } = await call('createStreamTicket', auth);
    called.add('openStream');
    const stream: StreamReader = await openStream(server.url, {
      query: { ticket: (ticket as { ticket: string }).ticket },
    });
    try {
      expect(stream.status).toBe(200);
      await stream.waitFor((events) => events.some((event) => event.event === 'connection.established'));
      const established = JSON.parse(stream.events[0]?.data ?? '{}') as { connectionId: string; lastEventId: string };
      await call('refreshStream', { ...auth, params: { connectionId: established.connectionId } });

      const { status: accepted, body: published } = await call('publishEvent', {
        ...auth,
        body: example('publishEvent'),
      });
      expect(accepted).toBe(202);
      const critical = { ...(example('publishEvent') as object), critical: true };
      expect((await call('publishEvent', { ...auth, body: critical })).status).toBe(201);
      const { body: polled } = await call('poll', { ...auth, query: { after: established.lastEventId } });
      expect((polled as { events: { id: string }[] }).events[0]?.id).toBe((published as { id: string }).id);

      const { status, body: generation } = await call('startGeneration', { ...auth, body: example('startGeneration') });
      expect(status).toBe(202);
      const generationId = (generation as { generationId: string }).generationId;
      await call('getGeneration', { ...auth, params: { id: generationId } });
      await call('listRunningGenerations', { ...auth, query: { status: 'running' } });
      const { body: page } = await call('listConversations', { ...auth, query: { limit: '5' } });
      const conversationId = (page as { conversations: { conversationId: string }[] }).conversations[0]?.conversationId;
      expect(conversationId).toBe((example('startGeneration') as { conversationId: string }).conversationId);
      await call('getConversation', { ...auth, params: { id: conversationId ?? '' } });
      await call('cancelGeneration', { ...auth, params: { id: generationId } });
      expect((await call('deleteConversation', { ...auth, params: { id: conversationId ?? '' } })).status).toBe(204);
      expect((await call('getConversation', { ...auth, params: { id: conversationId ?? '' } })).status).toBe(404);

      const { status: taskStatus, body: task } = await call('startTask', { ...auth, body: example('startTask') });
      expect(taskStatus).toBe(202);
      const taskId = (task as { taskId: string }).taskId;
      await call('getTask', { ...auth, params: { id: taskId } });
      await call('cancelTask', { ...auth, params: { id: taskId } });
      expect((await call('getTask', { ...auth, params: { id: 'no-such-task' } })).status).toBe(404);

      // Everything the stream sent meanwhile matches the documented event schemas.
      await stream.waitFor((events) => events.some((event) => event.event === 'task.cancelled'));
      for (const event of stream.events) {
        const type = event.event ?? 'message';
        if (event.id === undefined) {
          const schema = CONTROL_EVENT_SCHEMAS[type as keyof typeof CONTROL_EVENT_SCHEMAS];
          expect(schema, type).toBeDefined();
          schema.parse(JSON.parse(event.data));
        } else {
          expect(isEventType(type), type).toBe(true);
          const envelope = JSON.parse(event.data) as { topic: string; type: string; payload: unknown };
          expect(envelope).toMatchObject({ topic: `user:${userId}`, type });
          expect(validateEventPayload(type, envelope.payload)).toMatchObject({ ok: true });
        }
      }
    } finally {
      stream.close();
    }
    expect([...called].sort()).toEqual(
      definitions()
        .map((operation) => operation.operationId)
        .sort(),
    );
  });
});

/** The documented request example of an operation. */
function example(operationId: string): unknown {
  const body = definitions().find((operation) => operation.operationId === operationId)?.body;
  if (!body) throw new Error(`${operationId} documents no body`);
  return body.example;
}

/** Fails unless `status` is documented for the operation and `text` has the documented shape. */
function checkAnswer(operation: RouteDefinition, status: number, text: string): unknown {
  const label = `${operation.operationId} answered ${status}: ${text.slice(0, 300)}`;
  const success = operation.answers[status];
  if (success) {
    if (!success.schema) return text;
    const body: unknown = JSON.parse(text);
    const result = success.schema.safeParse(body);
    expect(result.success ? undefined : z.prettifyError(result.error), label).toBeUndefined();
    return body;
  }
  const body: unknown = JSON.parse(text);
  const error = errorBody.parse(body);
  expect(operation.errors, label).toContain(error.error.code);
  return body;
}
