import type { BusLogger } from './redis-event-bus.js';
import type { EventBus } from './event-bus.js';
import { MemoryEventBus } from './memory-event-bus.js';
import { RedisEventBus } from './redis-event-bus.js';

/** Options of {@link createEventBus}. */
export interface EventBusOptions {
  redisUrl: string | undefined;
  hotLogMaxEvents: number;
  hotLogMaxAgeMs: number;
  /** Key prefix (and hash tag) of the Redis bus; deployments sharing one Redis need distinct ones. */
  redisKeyPrefix?: string;
  /** Where the Redis bus reports what it cannot throw (failed sweeps, events lost in a long blip). */
  logger?: BusLogger;
}

/** The bus the configuration asks for: Redis when `REDIS_URL` is set, else in-process. */
export function createEventBus(options: EventBusOptions): EventBus {
  const limits = { maxEvents: options.hotLogMaxEvents, maxAgeMs: options.hotLogMaxAgeMs };
  if (options.redisUrl !== undefined) {
    return new RedisEventBus({
      url: options.redisUrl,
      limits,
      keyPrefix: options.redisKeyPrefix,
      logger: options.logger,
    });
  }
  return new MemoryEventBus(limits);
}
