import type { FastifyBaseLogger } from 'fastify';
import type { EventBus } from '../bus/event-bus.js';
import type { Config } from '../config.js';
import type { EventPublisher } from '../events/event-publisher.js';
import type { Metrics } from '../observability/metrics.js';
import type { ConnectionLeases } from '../sse/connection-leases.js';
import type { EventStore } from '../store/event-store.js';
import { createAIProvider } from './create-ai-provider.js';
import { continuesAfterRestart } from '../jobs/job-registry.js';
import { GenerationService } from './generation-service.js';

/** What {@link createGenerationService} wires together. */
export interface GenerationServiceDependencies {
  config: Readonly<Config>;
  instanceId: string;
  bus: EventBus;
  store: EventStore;
  publisher: EventPublisher;
  metrics: Metrics;
  logger: FastifyBaseLogger;
  /** Cluster-wide count of running generations per user (with Redis); see GenerationServiceOptions.leases. */
  leases?: ConnectionLeases;
}

/** The generation service with the configured provider and limits; call `start()` before serving. */
export function createGenerationService(dependencies: GenerationServiceDependencies): GenerationService {
  const { config, logger, instanceId, bus, store, publisher, metrics, leases } = dependencies;
  const provider = createAIProvider(config);
  if (provider.info.kind === 'offline') {
    logger.info('AI: using the offline demo provider (no AI model); set AI_BASE_URL / AI_API_KEY and AI_MODEL for one');
  } else {
    logger.info({ model: provider.info.model, baseUrl: config.aiBaseUrl }, 'AI: using an OpenAI-compatible provider');
  }
  return new GenerationService({
    provider,
    publisher,
    bus,
    store,
    metrics,
    logger,
    instanceId,
    flushMs: config.aiFlushMs,
    maxConcurrentPerUser: config.aiMaxConcurrentPerUser,
    createRate: { max: config.aiCreateRateMax, windowMs: config.aiCreateRateWindowMs },
    ...(leases ? { leases, leaseRefreshMs: config.connectionLeaseTtlMs / 3 } : {}),
    defaultMaxTokens: config.aiDefaultMaxTokens,
    maxDurationMs: config.aiTotalTimeoutMs,
    continueAfterRestart: continuesAfterRestart(bus.kind, config.instanceId),
  });
}
