/**
 * Every route of the HTTP API, registered in an encapsulated context of their own: their error
 * handler, JSON parser, CORS and cookie parsing apply to them only, never to the host's routes.
 */
import cookie from '@fastify/cookie';
import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../core/errors.js';
import { registerApiDocs } from '../routes/api-docs.js';
import { registerAuthRoutes } from '../routes/auth-routes.js';
import { registerConversationRoutes } from '../routes/conversation-routes.js';
import { registerErrorHandling } from '../routes/error-handler.js';
import { registerGenerationRoutes } from '../routes/generation-routes.js';
import { registerHealthRoutes } from '../routes/health-routes.js';
import { registerPollRoute } from '../routes/poll-route.js';
import { registerPublishRoute } from '../routes/publish-route.js';
import { registerStreamRoutes } from '../routes/sse-routes.js';
import { registerTaskRoutes } from '../routes/task-routes.js';
import type { RealtimeContext } from './start-realtime.js';

/** Registers the routes on `app`, which must be a context of their own (see the module comment). */
export async function registerRealtimeRoutes(app: FastifyInstance, context: RealtimeContext): Promise<void> {
  const { settings: config, metrics, authenticator, tickets, bus, store, connections, isClosing } = context;
  registerErrorHandling(app, metrics);
  // A host that parses cookies already keeps doing it; a second registration would be refused.
  if (!app.hasRequestDecorator('cookies')) await app.register(cookie);
  await app.register(cors, { origin: config.corsOrigins.length > 0 ? config.corsOrigins : false, credentials: true });
  // A request arriving while the server stops (on a kept-alive socket, or pipelined) is sent to
  // another instance in the API's error shape; Fastify adds `Connection: close`, so the socket
  // ends with it. After CORS, so a browser can read the answer.
  app.addHook('onRequest', async () => {
    if (isClosing()) throw new AppError('shutting_down', 'this instance is shutting down; another one answers');
  });
  registerHealthRoutes(app, { bus, store, metrics, metricsToken: config.metricsToken, isClosing });
  registerAuthRoutes(app, { config, authenticator, tickets });
  await registerPublishRoute(app, {
    config,
    authenticator,
    publisher: context.publisher,
    idempotencyKeys: context.idempotencyKeys,
  });
  const streamServices = {
    config,
    instanceId: context.instanceId,
    authenticator,
    connections,
    bus,
    store,
    metrics,
    isClosing,
  };
  registerStreamRoutes(app, streamServices);
  registerPollRoute(app, streamServices);
  registerGenerationRoutes(app, {
    authenticator,
    generations: context.generations,
    conversations: context.conversations,
  });
  registerConversationRoutes(app, { authenticator, conversations: context.conversations });
  registerTaskRoutes(app, { authenticator, tasks: context.tasks });
  await registerApiDocs(app, { taskKinds: context.tasks.kinds(), eventTypes: context.catalog.customTypes });
}
