/**
 * Every route of the HTTP API, registered in an encapsulated context of their own: their error
 * handler, JSON parser, CORS and cookie parsing apply to them only, never to the host's routes.
 */
import cookie from '@fastify/cookie';
import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../core/errors.js';
import { registerApiDocs } from '../routes/api-docs.js';
import { authRoutes } from '../routes/auth-routes.js';
import { conversationRoutes } from '../routes/conversation-routes.js';
import { registerErrorHandling } from '../routes/error-handler.js';
import { generationRoutes } from '../routes/generation-routes.js';
import { healthRoutes } from '../routes/health-routes.js';
import { pollRoutes } from '../routes/poll-route.js';
import { publishRoutes } from '../routes/publish-route.js';
import type { RouteDefinition } from '../routes/route-definition.js';
import { registerRoutes } from '../routes/route-registry.js';
import { streamRoutes } from '../routes/sse-routes.js';
import { taskRoutes } from '../routes/task-routes.js';
import type { RealtimeContext } from './start-realtime.js';

/** Registers the routes on `app`, which must be a context of their own (see the module comment). */
export async function registerRealtimeRoutes(app: FastifyInstance, context: RealtimeContext): Promise<void> {
  const { settings: config, metrics, authenticator, tickets, bus, store, connections, isClosing } = context;
  registerErrorHandling(app, metrics);
  // A host that parses cookies already keeps doing it; a second registration would be refused.
  if (!app.hasRequestDecorator('cookies')) await app.register(cookie);
  // Without CORS_ORIGINS the plugin would answer nothing and add no header (its OPTIONS route then
  // calls the not-found handler, as no route does), yet copy its options for every request: about
  // a fiftieth of the CPU of opening a stream. So it is registered only when it has work to do.
  if (config.corsOrigins.length > 0) await app.register(cors, { origin: config.corsOrigins, credentials: true });
  // A request arriving while the server stops (on a kept-alive socket, or pipelined) is sent to
  // another instance in the API's error shape; Fastify adds `Connection: close`, so the socket
  // ends with it. After CORS, so a browser can read the answer. A callback hook, not an async
  // one: no promise per request for a check that is almost always false.
  app.addHook('onRequest', (_request, _reply, done) => {
    done(
      isClosing() ? new AppError('shutting_down', 'this instance is shutting down; another one answers') : undefined,
    );
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
  // Every route of the API, each one definition: registered here, documented at /docs from the same list.
  const routes: RouteDefinition[] = [
    ...authRoutes({ config, authenticator, tickets, log: app.log }),
    ...streamRoutes(streamServices),
    ...pollRoutes(streamServices),
    ...(await publishRoutes(app, {
      config,
      authenticator,
      publisher: context.publisher,
      idempotencyKeys: context.idempotencyKeys,
    })),
    ...generationRoutes({ authenticator, generations: context.generations, conversations: context.conversations }),
    ...conversationRoutes({ authenticator, conversations: context.conversations }),
    ...taskRoutes({ authenticator, tasks: context.tasks }),
    ...healthRoutes({ bus, store, metrics, metricsToken: config.metricsToken, isClosing, log: app.log }),
  ];
  registerRoutes(app, routes);
  await registerApiDocs(app, { routes, eventTypes: context.catalog.customTypes });
}
