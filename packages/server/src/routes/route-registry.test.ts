import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AppError } from '../core/errors.js';
import { Metrics } from '../adapters/observability/metrics.js';
import { registerErrorHandling } from './error-handler.js';
import { defineRoute } from './route-definition.js';
import { registerRoutes } from './route-registry.js';

const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

/** One route of each kind of input, behind a token check that reads `authorization: ok`. */
async function appWithRoutes(): Promise<FastifyInstance> {
  const app = Fastify();
  apps.push(app);
  registerErrorHandling(app, new Metrics({ defaultMetrics: false }));
  const authenticate = async (request: { headers: Record<string, unknown> }) => {
    if (request.headers['authorization'] !== 'ok') throw new AppError('unauthorized', 'no token');
    return { userId: 'u1' };
  };
  registerRoutes(app, [
    defineRoute({
      method: 'POST',
      url: '/things/:id',
      operationId: 'makeThing',
      tag: 'tasks',
      summary: 'Make a thing',
      credentials: ['bearer'],
      authenticate,
      params: z.object({ id: z.string().max(3) }),
      query: z.object({ size: z.coerce.number().int().default(1) }),
      body: { schema: z.strictObject({ name: z.string() }), example: { name: 'a' } },
      answers: { 202: { description: 'Made.' } },
      errors: ['unauthorized', 'invalid_request'],
      handler: async ({ principal, params, query, body, reply }) => {
        reply.code(202);
        return { by: principal.userId, id: params.id, size: query.size, name: body.name };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/events',
      operationId: 'sendEvent',
      tag: 'events',
      summary: 'Send an event',
      credentials: [],
      body: { schema: z.object({ type: z.string() }), example: { type: 'x' }, invalidCode: 'invalid_event' },
      answers: { 200: { description: 'Sent.' } },
      errors: ['invalid_event'],
      handler: ({ body }) => body,
    }),
    defineRoute({
      method: 'POST',
      url: '/login',
      operationId: 'login',
      tag: 'auth',
      summary: 'Log in',
      credentials: [],
      body: { schema: z.object({ user: z.string() }), example: { user: 'u' }, emptyAsObject: true },
      answers: { 200: { description: 'In.' } },
      errors: ['invalid_request'],
      handler: ({ body }) => body,
    }),
  ]);
  await app.ready();
  return app;
}

describe('registerRoutes', () => {
  it('hands the handler its parsed params, query and body, and the principal', async () => {
    const app = await appWithRoutes();
    const response = await app.inject({
      method: 'POST',
      url: '/things/abc?size=4',
      headers: { authorization: 'ok' },
      payload: { name: 'n' },
    });
    expect(response.statusCode).toBe(202);
    expect(response.json()).toEqual({ by: 'u1', id: 'abc', size: 4, name: 'n' });
  });

  it('authenticates before it reads any input: 401 whatever else is wrong', async () => {
    const app = await appWithRoutes();
    const response = await app.inject({ method: 'POST', url: '/things/toolong?size=x', payload: { bad: 1 } });
    expect(response.statusCode).toBe(401);
    expect(response.json()).toEqual({ error: { code: 'unauthorized', message: 'no token' } });
  });

  it('answers bad input with 400 in the API error shape, naming the problem', async () => {
    const app = await appWithRoutes();
    const headers = { authorization: 'ok' };
    for (const [url, payload, field] of [
      ['/things/toolong', { name: 'n' }, 'id'],
      ['/things/abc?size=x', { name: 'n' }, 'size'],
      ['/things/abc', { name: 1 }, 'name'],
    ] as const) {
      const response = await app.inject({ method: 'POST', url, headers, payload });
      expect(response.statusCode, url).toBe(400);
      const body = response.json<{ error: { code: string; message: string } }>();
      expect(body.error.code).toBe('invalid_request');
      expect(body.error.message).toContain(field);
    }
  });

  it('refuses an empty body with the route’s code, unless the route reads it as {}', async () => {
    const app = await appWithRoutes();
    const empty = { 'content-type': 'application/json' };
    const event = await app.inject({ method: 'POST', url: '/events', headers: empty, payload: '' });
    expect(event.statusCode).toBe(400);
    expect(event.json()).toEqual({ error: { code: 'invalid_event', message: 'body must be a JSON object' } });
    const badEvent = await app.inject({ method: 'POST', url: '/events', payload: { type: 1 } });
    expect(badEvent.json()).toMatchObject({ error: { code: 'invalid_event' } });
    const login = await app.inject({ method: 'POST', url: '/login', headers: empty, payload: '' });
    expect(login.statusCode).toBe(400);
    expect(login.json<{ error: { message: string } }>().error.message).toContain('user');
  });

  it('keeps the definition in the route’s config, where onRoute hooks and /docs find it', async () => {
    const app = Fastify();
    apps.push(app);
    const seen: string[] = [];
    app.addHook(
      'onRoute',
      (route) => void seen.push(`${String(route.method)} ${route.config?.definition?.operationId}`),
    );
    registerRoutes(app, [
      defineRoute({
        method: 'GET',
        url: '/x',
        operationId: 'getX',
        tag: 'operations',
        summary: 'X',
        credentials: [],
        answers: { 200: { description: 'X.' } },
        errors: [],
        handler: async () => ({}),
      }),
    ]);
    await app.ready();
    expect(seen).toEqual(['GET getX', 'HEAD getX']);
  });
});
