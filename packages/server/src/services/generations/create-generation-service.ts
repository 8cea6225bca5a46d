import type { FastifyBaseLogger } from 'fastify';
import type { EventBus } from '../../adapters/bus/event-bus.js';
import type { RealtimeSettings } from '../../core/settings.js';
import type { EventPublisher } from '../events/event-publisher.js';
import type { Metrics } from '../../adapters/observability/metrics.js';
import type { ConnectionLeases } from '../../adapters/leases/connection-leases.js';
import type { EventStore } from '../../adapters/store/event-store.js';
import type { AIProvider } from '../../adapters/ai/ai-provider.js';
import { createAIProvider } from '../../adapters/ai/create-ai-provider.js';
import { continuesAfterRestart } from '../jobs/job-registry.js';
import { GenerationService } from './generation-service.js';

/** What {@link createGenerationService} wires together. */
export interface GenerationServiceDependencies {
  config: Readonly<RealtimeSettings>;
  instanceId: string;
  bus: EventBus;
  store: EventStore;
  publisher: EventPublisher;
  metrics: Metrics;
  logger: FastifyBaseLogger;
  /** Cluster-wide count of running generations per user (with Redis); see GenerationServiceOptions.leases. */
  leases?: ConnectionLeases;
  /** The host's own provider; default: the one the settings select. */
  provider?: AIProvider;
}

/** The generation service with the configured provider and limits; call `start()` before serving. */
export function createGenerationService(dependencies: GenerationServiceDependencies): GenerationService {
  const { config, logger, instanceId, bus, store, publisher, metrics, leases } = dependencies;
  const provider = dependencies.provider ?? createAIProvider(config);
  if (provider.info.kind === 'offline') {
    logger.info(
      'AI: using the offline demo provider (no AI model); set AI_PROVIDER or AI_BASE_URL / AI_API_KEY, and AI_MODEL',
    );
  } else {
    const { kind, model } = provider.info;
    logger.info(
      { kind, client: config.aiClient, model, baseUrl: config.aiBaseUrl },
      `AI: using ${provider.info.label}`,
    );
  }
  // The AI SDK prints its warnings (a setting a model ignores) to the console; ours go to the log.
  globalThis.AI_SDK_LOG_WARNINGS ??= ({ warnings, provider: name, model }) =>
    logger.warn({ warnings, provider: name, model }, 'AI SDK warning');
  // AI_MODEL first: the model of a request that names none.
  const models = [...new Set([provider.info.model, ...config.aiModels])];
  return new GenerationService({
    provider,
    models,
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
