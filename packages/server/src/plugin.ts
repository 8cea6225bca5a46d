import cookie from '@fastify/cookie';
import cors from '@fastify/cors';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { createGenerationService } from './services/generations/create-generation-service.js';
import { registerGenerationRoutes } from './routes/generation-routes.js';
import { registerAuthRoutes } from './routes/auth-routes.js';
import { Authenticator } from './services/auth/authenticator.js';
import { createJwtVerifier } from './adapters/auth/jwt-verifier.js';
import { MemoryTicketStore } from './adapters/auth/memory-ticket-store.js';
import { RedisTicketStore } from './adapters/auth/redis-ticket-store.js';
import type { TicketStore } from './adapters/auth/ticket-store.js';
import { createEventBus } from './adapters/bus/create-event-bus.js';
import type { EventBus } from './adapters/bus/event-bus.js';
import type { Config } from './core/config.js';
import { AppError } from './core/errors.js';
import { idFloorAt } from './core/event-id.js';
import { EventPublisher } from './services/events/event-publisher.js';
import { repairPendingEvents, startPendingRepair } from './services/events/pending-event-repair.js';
import { registerPublishRoute } from './routes/publish-route.js';
import { registerApiDocs } from './routes/api-docs.js';
import { createIdempotencyStore } from './adapters/idempotency/create-idempotency-store.js';
import { clientErrorHandler, frameworkErrorHandler, registerErrorHandling } from './routes/error-handler.js';
import { GENERATION_JOURNAL_TOPIC, TASK_JOURNAL_TOPIC } from './core/journal-events.js';
import { registerHealthRoutes } from './routes/health-routes.js';
import { createLogger } from './adapters/observability/logger.js';
import { Metrics } from './adapters/observability/metrics.js';
import { ConnectionManager } from './services/sse/connection-manager.js';
import { RedisConnectionLeases } from './adapters/leases/connection-leases.js';
import { registerPollRoute } from './routes/poll-route.js';
import { registerStreamRoutes } from './routes/sse-routes.js';
import { createEventStore } from './adapters/store/create-event-store.js';
import type { EventStore } from './adapters/store/event-store.js';
import { startRetentionJob } from './services/store/retention-job.js';
import { createTaskService } from './services/tasks/create-task-service.js';
import type { RunnableTaskKind } from './services/tasks/task-kind.js';
import { registerTaskRoutes } from './routes/task-routes.js';

/** What {@link buildApp} needs; adapters default to what the configuration selects. */
export interface AppDependencies {
  config: Readonly<Config>;
  logger?: Logger;
  bus?: EventBus;
  store?: EventStore;
  tickets?: TicketStore;
  /** The task kinds `POST /api/tasks` runs (none by default). */
  taskKinds?: readonly RunnableTaskKind[];
}

/** The running parts of the server, for main.ts, tests and benchmarks. */
export interface RealtimeServices {
  instanceId: string;
  config: Readonly<Config>;
  bus: EventBus;
  store: EventStore;
  metrics: Metrics;
  connections: ConnectionManager;
  publisher: EventPublisher;
}

declare module 'fastify' {
  interface FastifyInstance {
    realtime: RealtimeServices;
  }
}

/** How often each instance looks for critical events left pending (see pending-event-repair.ts). */
const PENDING_REPAIR_INTERVAL_MS = 30_000;

const DEFAULT_STATIC_DIR = fileURLToPath(new URL('../../../apps/frontend/dist', import.meta.url));

/**
 * Builds the server without listening (so tests can `inject` or listen on port 0): opens the
 * store, seeds ids, starts the bus and registers every route. `app.close()` ends streams, records
 * the id head and closes the adapters.
 */
export async function buildApp(dependencies: AppDependencies): Promise<FastifyInstance> {
  const { config } = dependencies;
  const logger = dependencies.logger ?? createLogger({ level: config.logLevel });
  // Random unless configured: it goes out in every `connection.established`, and a host name tells
  // strangers about the infrastructure.
  const instanceId = config.instanceId ?? `instance-${randomBytes(6).toString('hex')}`;
  const metrics = new Metrics();
  const breaker = {
    failureThreshold: config.breakerFailureThreshold,
    coolDownMs: config.breakerCoolDownMs,
    onStateChange: metrics.observeBreaker,
  };
  const store =
    dependencies.store ??
    createEventStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, logger, breaker });
  // The bus reports live gaps (streams that must resume) and outages to the connection manager, made below.
  let onLiveGap = (_topic: string): void => undefined;
  let onIsland = (_since: number): void => undefined;
  const bus =
    dependencies.bus ??
    createEventBus({
      redisUrl: config.redisUrl,
      redisKeyPrefix: config.redisKeyPrefix,
      hotLogMaxEvents: config.hotLogMaxEvents,
      hotLogMaxAgeMs: config.hotLogMaxAgeMs,
      hotLogMaxBytes: config.hotLogMaxBytes,
      logger,
      breaker,
      commandTimeoutMs: config.redisCommandTimeoutMs,
      probe: { intervalMs: config.busProbeIntervalMs, timeoutMs: config.busProbeTimeoutMs, id: instanceId },
      onLiveGap: (topic) => onLiveGap(topic),
      onLocalPublish: () => metrics.busLocalPublishes.inc(),
      onIsland: (since) => onIsland(since),
    });
  // Tickets must work on whichever instance the browser's EventSource lands on.
  const tickets =
    dependencies.tickets ??
    (config.redisUrl
      ? new RedisTicketStore({
          url: config.redisUrl,
          keyPrefix: config.redisKeyPrefix,
          commandTimeoutMs: config.redisCommandTimeoutMs,
        })
      : new MemoryTicketStore());

  await store.init();
  const recordedHead = await store.takeRecordedHeadId();
  const idFloor = Math.max(await store.maxId(), recordedHead ?? 0, idFloorAt(Date.now()));
  await bus.start({ idFloor, coveredFrom: recordedHead ?? idFloor });

  const { trustProxy, requestTimeoutMs } = config;
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // A hop count trusts that many hops from the socket inwards (Fastify refuses plain numbers).
    trustProxy: typeof trustProxy === 'number' ? (_address: string, hop: number) => hop < trustProxy : trustProxy,
    // Fastify's own 503 while closing has its body, not the API's: the onRequest hook below answers.
    return503OnClosing: false,
    // Until the whole request (headers and body) has arrived; a stream's request is complete at
    // once, so streams and long-polls are not cut by it. Node checks pending requests every
    // connectionsCheckingInterval, so the timeout is that precise.
    requestTimeout: requestTimeoutMs,
    http: {
      headersTimeout: Math.min(60_000, requestTimeoutMs),
      connectionsCheckingInterval: Math.min(30_000, Math.max(250, requestTimeoutMs / 4)),
    },
    clientErrorHandler: clientErrorHandler(metrics),
    frameworkErrors: frameworkErrorHandler(metrics),
  });
  const connections = new ConnectionManager({
    bus,
    metrics,
    logger: app.log,
    maxConnectionsPerUser: config.maxConnectionsPerUser,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    heartbeatMs: config.heartbeatMs,
    leases: config.redisUrl
      ? new RedisConnectionLeases({
          url: config.redisUrl,
          keyPrefix: config.redisKeyPrefix,
          ttlMs: config.connectionLeaseTtlMs,
          logger: app.log,
        })
      : undefined,
    leaseRefreshMs: config.connectionLeaseTtlMs / 3,
  });
  onLiveGap = (topic) => {
    metrics.busLiveGaps.inc();
    connections.resyncTopic(topic);
  };
  onIsland = (since) => connections.tellIsland(since);
  const publisher = new EventPublisher({ bus, store, metrics, logger: app.log });
  // Critical events a previous process left pending get their fate first, so that the job recovery
  // below sees every outcome that went out; then the pass runs on a timer.
  const repair = { bus, store, hotLogMaxEvents: config.hotLogMaxEvents, logger: app.log };
  await repairPendingEvents(repair, 0).catch((error: unknown) =>
    app.log.warn({ err: error }, 'pending critical event repair failed; it runs again later'),
  );
  const pendingRepair = startPendingRepair({ ...repair, intervalMs: PENDING_REPAIR_INTERVAL_MS });
  const authenticator = new Authenticator(
    createJwtVerifier({
      jwt: config.jwt,
      issuer: config.jwtIssuer,
      audience: config.jwtAudience,
      typ: config.jwtTyp,
      maxLifetimeMs: config.jwtMaxLifetimeMs,
      jwks: { logger: app.log },
    }),
    tickets,
    config.corsOrigins,
  );
  const retention = startRetentionJob({
    store,
    retentionMs: config.storeRetentionMs,
    shortLived: { topics: [GENERATION_JOURNAL_TOPIC, TASK_JOURNAL_TOPIC], retentionMs: config.journalRetentionMs },
    intervalMs: config.storeCleanupIntervalMs,
    logger: app.log,
  });
  let closing = false;
  const isClosing = () => closing;

  app.decorate('realtime', { instanceId, config, bus, store, metrics, connections, publisher });
  registerErrorHandling(app, metrics);
  await app.register(cookie);
  await app.register(cors, { origin: config.corsOrigins.length > 0 ? config.corsOrigins : false, credentials: true });
  // A request arriving while the server stops (on a kept-alive socket, or pipelined) is sent to
  // another instance in the API's error shape; Fastify adds `Connection: close`, so the socket
  // ends with it. After CORS, so a browser can read the answer.
  app.addHook('onRequest', async () => {
    if (closing) throw new AppError('shutting_down', 'this instance is shutting down; another one answers');
  });
  registerHealthRoutes(app, { bus, store, metrics, metricsToken: config.metricsToken, isClosing });
  registerAuthRoutes(app, { config, authenticator, tickets });
  // Like tickets: a retry of a publish may land on any instance.
  const idempotencyKeys = createIdempotencyStore({
    redisUrl: config.redisUrl,
    redisKeyPrefix: config.redisKeyPrefix,
    commandTimeoutMs: config.redisCommandTimeoutMs,
  });
  await registerPublishRoute(app, { config, authenticator, publisher, idempotencyKeys });
  const streamServices = { config, instanceId, authenticator, connections, bus, store, metrics, isClosing };
  registerStreamRoutes(app, streamServices);
  registerPollRoute(app, streamServices);
  // With Redis, AI_MAX_CONCURRENT_PER_USER holds for the cluster, counted like streams.
  const generationLeases = config.redisUrl
    ? new RedisConnectionLeases({
        url: config.redisUrl,
        keyPrefix: config.redisKeyPrefix,
        keyspace: 'generations',
        ttlMs: config.connectionLeaseTtlMs,
        logger: app.log,
      })
    : undefined;
  const generations = createGenerationService({
    config,
    instanceId,
    bus,
    store,
    publisher,
    metrics,
    logger: app.log,
    leases: generationLeases,
  });
  await generations.start();
  registerGenerationRoutes(app, { authenticator, generations });
  const provider = generations.provider;
  const taskKinds = dependencies.taskKinds ?? [];
  const tasks = createTaskService({
    config,
    instanceId,
    bus,
    store,
    publisher,
    metrics,
    logger: app.log,
    provider,
    taskKinds,
  });
  await tasks.start();
  registerTaskRoutes(app, { authenticator, tasks });
  await registerApiDocs(app, tasks.kinds());

  const staticDir = config.staticDir ?? DEFAULT_STATIC_DIR;
  if (existsSync(staticDir)) await app.register(fastifyStatic, { root: staticDir, wildcard: false });
  else app.log.warn({ staticDir }, 'no built UI found; run `npm run build -w apps/frontend` to serve it');

  app.addHook('preClose', async () => {
    closing = true;
    connections.closeAll('shutdown');
    // Streams are gone; in-flight requests get a short drain, then every socket is cut, including
    // keep-alive sockets that opened but never sent a request (server.close() would wait on them).
    setTimeout(() => app.server.closeAllConnections(), config.shutdownDrainMs).unref();
  });
  app.addHook('onClose', async () => {
    await Promise.all([generations.stop(), tasks.stop()]);
    await provider.close?.();
    connections.stop();
    retention.stop();
    pendingRepair.stop();
    try {
      await store.recordHeadId(await bus.headId());
    } catch (error) {
      app.log.warn(
        { err: error },
        'could not record the id head; the next start will report a gap to resuming clients',
      );
    }
    await Promise.allSettled([bus.close(), tickets.close(), idempotencyKeys.close(), generationLeases?.close()]);
    await store.close();
  });
  return app;
}
