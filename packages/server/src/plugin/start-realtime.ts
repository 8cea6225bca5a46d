/**
 * Opens and starts what one realtime plugin runs (store, bus, tickets, idempotency keys, streams,
 * publisher, generations, tasks), each part with its own onClose hook added right after it is
 * opened. Fastify runs onClose hooks last-added first, so closing undoes starting in reverse:
 * jobs stop (handing over) while the publisher and the store still work, streams end, and the
 * store closes last; a start that fails half-way still closes what it opened.
 */
import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { fromHostProvider } from '../adapters/ai/ai-provider.js';
import { createJwtVerifier } from '../adapters/auth/jwt-verifier.js';
import { MemoryTicketStore } from '../adapters/auth/memory-ticket-store.js';
import { RedisTicketStore } from '../adapters/auth/redis-ticket-store.js';
import type { TicketStore } from '../adapters/auth/ticket-store.js';
import { createEventBus } from '../adapters/bus/create-event-bus.js';
import type { EventBus } from '../adapters/bus/event-bus.js';
import { createIdempotencyStore } from '../adapters/idempotency/create-idempotency-store.js';
import type { IdempotencyStore } from '../adapters/idempotency/idempotency-store.js';
import { RedisConnectionLeases } from '../adapters/leases/connection-leases.js';
import type { RedisTarget } from '../adapters/redis/redis-connection.js';
import { Metrics } from '../adapters/observability/metrics.js';
import { createEventStore } from '../adapters/store/create-event-store.js';
import type { EventStore } from '../adapters/store/event-store.js';
import { idFloorAt } from '../core/event-id.js';
import { GENERATION_JOURNAL_TOPIC, TASK_JOURNAL_TOPIC } from '../core/journal-events.js';
import type { RealtimeSettings } from '../core/settings.js';
import { Authenticator } from '../services/auth/authenticator.js';
import { EventPublisher } from '../services/events/event-publisher.js';
import { EventCatalog } from '../services/events/event-types.js';
import { repairPendingEvents, startPendingRepair } from '../services/events/pending-event-repair.js';
import { ConversationService } from '../services/conversations/conversation-service.js';
import { createGenerationService } from '../services/generations/create-generation-service.js';
import { GenerationLog } from '../services/generations/generation-log.js';
import type { GenerationService } from '../services/generations/generation-service.js';
import { ConnectionManager } from '../services/sse/connection-manager.js';
import { startRetentionJob } from '../services/store/retention-job.js';
import { createTaskService } from '../services/tasks/create-task-service.js';
import type { TaskRunner } from '../services/tasks/task-runner.js';
import type { ResolvedRealtimeOptions } from './options.js';

/** How often each instance looks for critical events left pending (see pending-event-repair.ts). */
const PENDING_REPAIR_INTERVAL_MS = 30_000;

/** The running parts of one plugin instance, shared by its routes and its `app.realtime` API. */
export interface RealtimeContext {
  settings: Readonly<RealtimeSettings>;
  instanceId: string;
  metrics: Metrics;
  bus: EventBus;
  store: EventStore;
  tickets: TicketStore;
  idempotencyKeys: IdempotencyStore;
  catalog: EventCatalog;
  connections: ConnectionManager;
  publisher: EventPublisher;
  authenticator: Authenticator;
  generations: GenerationService;
  conversations: ConversationService;
  tasks: TaskRunner;
  /** Set once the app starts closing: streams end, new requests are sent elsewhere. */
  isClosing(): boolean;
}

/** Opens and starts everything, in dependency order; see the module comment for closing. */
export async function startRealtime(app: FastifyInstance, options: ResolvedRealtimeOptions): Promise<RealtimeContext> {
  const { settings: config, adapters } = options;
  const log = app.log;
  // Random unless configured: it goes out in every `connection.established`, and a host name tells
  // strangers about the infrastructure.
  const instanceId = config.instanceId ?? `instance-${randomBytes(6).toString('hex')}`;
  // Checked before anything opens: a bad name must not leave a store open.
  const catalog = new EventCatalog(options.eventTypes);
  const metrics = new Metrics();
  const breaker = {
    failureThreshold: config.breakerFailureThreshold,
    coolDownMs: config.breakerCoolDownMs,
    onStateChange: metrics.observeBreaker,
  };

  // One Redis, a Redis Cluster, or none (everything in-process).
  const redis: RedisTarget | undefined =
    config.redisClusterNodes.length > 0 ? { clusterNodes: config.redisClusterNodes } : config.redisUrl;
  const store =
    adapters.store ??
    createEventStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, logger: log, breaker });
  // The bus reports live gaps (streams that must resume) and outages to the connection manager, made below.
  let onLiveGap = (_topic: string): void => undefined;
  let onIsland = (_since: number): void => undefined;
  const bus =
    adapters.bus ??
    createEventBus({
      redis,
      redisKeyPrefix: config.redisKeyPrefix,
      redisBusPartitions: config.redisBusPartitions,
      hotLogMaxEvents: config.hotLogMaxEvents,
      hotLogMaxAgeMs: config.hotLogMaxAgeMs,
      hotLogMaxBytes: config.hotLogMaxBytes,
      logger: log,
      breaker,
      commandTimeoutMs: config.redisCommandTimeoutMs,
      probe: { intervalMs: config.busProbeIntervalMs, timeoutMs: config.busProbeTimeoutMs, id: instanceId },
      onLiveGap: (topic) => onLiveGap(topic),
      onLocalPublish: () => metrics.busLocalPublishes.inc(),
      onIsland: (since) => onIsland(since),
    });
  // Tickets and idempotency keys must work on whichever instance a retry or an EventSource lands on.
  const tickets =
    adapters.tickets ??
    (redis
      ? new RedisTicketStore({
          url: redis,
          keyPrefix: config.redisKeyPrefix,
          commandTimeoutMs: config.redisCommandTimeoutMs,
        })
      : new MemoryTicketStore());
  const idempotencyKeys = createIdempotencyStore({
    redis,
    redisKeyPrefix: config.redisKeyPrefix,
    commandTimeoutMs: config.redisCommandTimeoutMs,
  });

  // Storage closes last: the id head is recorded once nothing publishes any more.
  app.addHook('onClose', async () => {
    try {
      await store.recordHeadId(await bus.headId());
    } catch (error) {
      log.warn({ err: error }, 'could not record the id head; the next start will report a gap to resuming clients');
    }
    await Promise.allSettled([bus.close(), tickets.close(), idempotencyKeys.close()]);
    await store.close();
  });
  await store.init();
  const recordedHead = await store.takeRecordedHeadId();
  const idFloor = Math.max(await store.maxId(), recordedHead ?? 0, idFloorAt(Date.now()));
  await bus.start({ idFloor, coveredFrom: recordedHead ?? idFloor });

  const connections = new ConnectionManager({
    bus,
    metrics,
    logger: log,
    maxConnectionsPerUser: config.maxConnectionsPerUser,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    heartbeatMs: config.heartbeatMs,
    leases: redis
      ? new RedisConnectionLeases({
          url: redis,
          keyPrefix: config.redisKeyPrefix,
          ttlMs: config.connectionLeaseTtlMs,
          logger: log,
        })
      : undefined,
    leaseRefreshMs: config.connectionLeaseTtlMs / 3,
  });
  onLiveGap = (topic) => {
    metrics.busLiveGaps.inc();
    connections.resyncTopic(topic);
  };
  onIsland = (since) => connections.tellIsland(since);
  app.addHook('onClose', async () => connections.stop());

  const publisher = new EventPublisher({ bus, store, metrics, logger: log, catalog });
  // Critical events a previous process left pending get their fate first, so that the job recovery
  // below sees every outcome that went out; then the pass runs on a timer.
  const repair = { bus, store, hotLogMaxEvents: config.hotLogMaxEvents, logger: log };
  await repairPendingEvents(repair, 0).catch((error: unknown) =>
    log.warn({ err: error }, 'pending critical event repair failed; it runs again later'),
  );
  const pendingRepair = startPendingRepair({ ...repair, intervalMs: PENDING_REPAIR_INTERVAL_MS });
  const retention = startRetentionJob({
    store,
    retentionMs: config.storeRetentionMs,
    shortLived: { topics: [GENERATION_JOURNAL_TOPIC, TASK_JOURNAL_TOPIC], retentionMs: config.journalRetentionMs },
    intervalMs: config.storeCleanupIntervalMs,
    logger: log,
  });
  app.addHook('onClose', async () => {
    retention.stop();
    pendingRepair.stop();
  });

  const authenticator = new Authenticator(
    createJwtVerifier({
      jwt: config.jwt,
      issuer: config.jwtIssuer,
      audience: config.jwtAudience,
      typ: config.jwtTyp,
      maxLifetimeMs: config.jwtMaxLifetimeMs,
      jwks: { logger: log },
    }),
    tickets,
    config.corsOrigins,
  );

  // With Redis, aiMaxConcurrentPerUser and taskMaxConcurrentPerUser hold for the cluster, counted like streams.
  const jobLeases = (keyspace: string) =>
    redis
      ? new RedisConnectionLeases({
          url: redis,
          keyPrefix: config.redisKeyPrefix,
          keyspace,
          ttlMs: config.connectionLeaseTtlMs,
          logger: log,
        })
      : undefined;
  const generationLeases = jobLeases('generations');
  const taskLeases = jobLeases('tasks');
  const jobs = { config, instanceId, bus, store, publisher, metrics, logger: log };
  const generations = createGenerationService({
    ...jobs,
    leases: generationLeases,
    ...(options.aiProvider ? { provider: fromHostProvider(options.aiProvider) } : {}),
  });
  const provider = generations.provider;
  const tasks = createTaskService({ ...jobs, provider, taskKinds: options.taskKinds, leases: taskLeases });
  // Jobs stop first (handing over while the publisher and store still work), then their provider.
  app.addHook('onClose', async () => {
    await Promise.all([generations.stop(), tasks.stop()]);
    await Promise.allSettled([provider.close?.(), generationLeases?.close(), taskLeases?.close()]);
  });
  // Observes the publisher from now on, so no outcome of a generation (continued ones included) is missed.
  const conversations = new ConversationService({
    store: store.conversations,
    generations,
    generationLog: new GenerationLog({ bus, store }),
    publisher,
    logger: log,
    runningLookbackMs: config.aiTotalTimeoutMs,
  });
  const conversationRetention = startRetentionJob({
    store: { deleteOlderThan: (cutoff) => store.conversations.deleteOlderThan(cutoff) },
    retentionMs: config.conversationRetentionMs,
    intervalMs: config.storeCleanupIntervalMs,
    logger: log,
  });
  app.addHook('onClose', async () => {
    conversationRetention.stop();
    conversations.stop();
  });
  await generations.start();
  await tasks.start();

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    connections.closeAll('shutdown');
    // Streams are gone; in-flight requests get a short drain, then every socket is cut, including
    // keep-alive sockets that opened but never sent a request (server.close() would wait on them).
    setTimeout(() => app.server.closeAllConnections(), config.shutdownDrainMs).unref();
  });
  return {
    settings: config,
    instanceId,
    metrics,
    bus,
    store,
    tickets,
    idempotencyKeys,
    catalog,
    connections,
    publisher,
    authenticator,
    generations,
    conversations,
    tasks,
    isClosing: () => closing,
  };
}
