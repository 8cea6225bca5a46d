import type { FastifyInstance } from 'fastify';
import { AppError } from '../core/errors.js';
import { parseInput } from './parse-input.js';
import type { RouteDefinition } from './route-definition.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The definition a route was registered from (onRoute hooks and tests compare it with /docs). */
    definition?: RouteDefinition;
  }
}

/**
 * Mounts route definitions on `app`. Each request is authenticated first (the definition's
 * `authenticate`), then its params, query and body are checked against the definition's schemas
 * (a 400 naming every problem, in the API's error shape), then the handler runs with the parsed
 * input. Checked in the handler rather than by Fastify's schema validation: Fastify validates
 * before `preHandler` hooks, and the API answers 401 before 400, and a publish's rate limit and
 * `Idempotency-Key` before its body.
 */
export function registerRoutes(app: FastifyInstance, routes: readonly RouteDefinition[]): void {
  for (const route of routes) {
    app.route({
      ...route.options,
      method: route.method,
      url: route.url,
      config: { ...route.options?.config, definition: route },
      handler: async (request, reply) => {
        const principal = route.authenticate ? await route.authenticate(request) : undefined;
        const params = route.params ? parseInput(route.params, request.params) : undefined;
        const query = route.query ? parseInput(route.query, request.query) : undefined;
        let body: unknown;
        if (route.body) {
          const { schema, invalidCode = 'invalid_request', emptyAsObject = false } = route.body;
          if (request.body === undefined && !emptyAsObject) {
            throw new AppError(invalidCode, 'body must be a JSON object');
          }
          body = parseInput(schema, request.body ?? {}, invalidCode);
        }
        return route.handler({ request, reply, principal, params, query, body });
      },
    });
  }
}
