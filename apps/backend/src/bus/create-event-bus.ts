import type { EventBus } from './event-bus.js';
import { MemoryEventBus } from './memory-event-bus.js';

/** Options of {@link createEventBus}. */
export interface EventBusOptions {
  redisUrl: string | undefined;
  hotLogMaxEvents: number;
  hotLogMaxAgeMs: number;
}

/** The bus the configuration asks for: Redis when `REDIS_URL` is set, else in-process. */
export function createEventBus(options: EventBusOptions): EventBus {
  if (options.redisUrl !== undefined) {
    throw new Error('REDIS_URL is set, but the Redis bus is not part of this version yet; unset it to run embedded');
  }
  return new MemoryEventBus({ maxEvents: options.hotLogMaxEvents, maxAgeMs: options.hotLogMaxAgeMs });
}
