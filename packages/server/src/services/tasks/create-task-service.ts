import type { FastifyBaseLogger } from 'fastify';
import type { AIProvider } from '../../adapters/ai/ai-provider.js';
import type { EventBus } from '../../adapters/bus/event-bus.js';
import type { Config } from '../../core/config.js';
import type { EventPublisher } from '../events/event-publisher.js';
import type { Metrics } from '../../adapters/observability/metrics.js';
import type { EventStore } from '../../adapters/store/event-store.js';
import { continuesAfterRestart } from '../jobs/job-registry.js';
import { demoTask } from '../../../../../apps/backend/src/task-kinds/demo-task.js';
import { outlineDraftPolishTask } from '../../../../../apps/backend/src/task-kinds/outline-draft-polish-task.js';
import { TaskCatalog } from './task-catalog.js';
import { TaskRunner } from './task-runner.js';

/** What {@link createTaskService} wires together. */
export interface TaskServiceDependencies {
  config: Readonly<Config>;
  instanceId: string;
  bus: EventBus;
  store: EventStore;
  publisher: EventPublisher;
  metrics: Metrics;
  logger: FastifyBaseLogger;
  /** The AI provider, shared with the generation service (`generations.provider`). */
  provider: AIProvider;
}

/** The task runner with the shipped kinds and the configured limits; call `start()` before serving. */
export function createTaskService(dependencies: TaskServiceDependencies): TaskRunner {
  const { config, ...services } = dependencies;
  return new TaskRunner({
    ...services,
    catalog: new TaskCatalog([demoTask, outlineDraftPolishTask]),
    maxConcurrentPerUser: config.taskMaxConcurrentPerUser,
    maxQueuedPerUser: config.taskMaxQueuedPerUser,
    createRate: { max: config.taskCreateRateMax, windowMs: config.taskCreateRateWindowMs },
    progressIntervalMs: config.taskProgressIntervalMs,
    maxDurationMs: config.taskMaxDurationMs,
    continueAfterRestart: continuesAfterRestart(services.bus.kind, config.instanceId),
  });
}
