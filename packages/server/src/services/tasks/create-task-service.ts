import type { FastifyBaseLogger } from 'fastify';
import type { AIProvider } from '../../adapters/ai/ai-provider.js';
import type { EventBus } from '../../adapters/bus/event-bus.js';
import type { ConnectionLeases } from '../../adapters/leases/connection-leases.js';
import type { RealtimeSettings } from '../../core/settings.js';
import type { EventPublisher } from '../events/event-publisher.js';
import type { Metrics } from '../../adapters/observability/metrics.js';
import type { EventStore } from '../../adapters/store/event-store.js';
import { continuesAfterRestart } from '../jobs/job-registry.js';
import { TaskCatalog } from './task-catalog.js';
import type { RunnableTaskKind } from './task-kind.js';
import { TaskRunner } from './task-runner.js';

/** What {@link createTaskService} wires together. */
export interface TaskServiceDependencies {
  config: Readonly<RealtimeSettings>;
  instanceId: string;
  bus: EventBus;
  store: EventStore;
  publisher: EventPublisher;
  metrics: Metrics;
  logger: FastifyBaseLogger;
  /** The AI provider, shared with the generation service (`generations.provider`). */
  provider: AIProvider;
  /** The kinds this server runs (the host's, e.g. the standalone host's demo kinds). */
  taskKinds: readonly RunnableTaskKind[];
  /** Cluster-wide count of running tasks per user (with Redis); see TaskRunnerOptions.leases. */
  leases?: ConnectionLeases;
}

/** The task runner with the given kinds and the configured limits; call `start()` before serving. */
export function createTaskService(dependencies: TaskServiceDependencies): TaskRunner {
  const { config, taskKinds, leases, ...services } = dependencies;
  return new TaskRunner({
    ...services,
    ...(leases ? { leases, leaseRefreshMs: config.connectionLeaseTtlMs / 3 } : {}),
    catalog: new TaskCatalog(taskKinds),
    maxConcurrentPerUser: config.taskMaxConcurrentPerUser,
    maxQueuedPerUser: config.taskMaxQueuedPerUser,
    createRate: { max: config.taskCreateRateMax, windowMs: config.taskCreateRateWindowMs },
    progressIntervalMs: config.taskProgressIntervalMs,
    maxDurationMs: config.taskMaxDurationMs,
    continueAfterRestart: continuesAfterRestart(services.bus.kind, config.instanceId),
  });
}
