/**
 * `realtimePlugin`: the realtime layer inside a team's own Fastify app. It decorates the app with
 * `realtime` (in-process publish, generations, tasks), registers every route of the HTTP API in
 * an encapsulated context (under `prefix`, or the prefix of the context it is registered in), and
 * closes everything it opened when the app closes. Options are checked once; it never reads
 * `process.env`.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { resolveRealtimeOptions, type RealtimePluginOptions } from './plugin/options.js';
import { createRealtimeApi, type Realtime } from './plugin/realtime-api.js';
import { registerRealtimeRoutes } from './plugin/realtime-routes.js';
import { startRealtime } from './plugin/start-realtime.js';

declare module 'fastify' {
  interface FastifyInstance {
    realtime: Realtime;
  }
}

async function realtime(app: FastifyInstance, options: RealtimePluginOptions): Promise<void> {
  const resolved = resolveRealtimeOptions(options);
  const context = await startRealtime(app, resolved);
  app.decorate('realtime', createRealtimeApi(context));
  // Not wrapped in fastify-plugin: the routes' hooks, parser and error handler stay theirs.
  await app.register(async (routes) => registerRealtimeRoutes(routes, context), {
    ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
  });
}

/**
 * The realtime layer as a Fastify plugin.
 * @example
 * await app.register(realtimePlugin, { jwt: { secret }, taskKinds: [wordCount] });
 * const { id } = await app.realtime.publish({ topic: 'user:u1', type: 'notification', payload: { title: 'Hi', level: 'info' } });
 */
export const realtimePlugin = fp(realtime, { name: '@infinitescribe/server', fastify: '5.x' });
