import type { EventRecord } from '../../core/event-record.js';
import type { CircuitBreakerOptions } from '../../core/circuit-breaker.js';
import type { BusLogger, RedisEventBusOptions } from './redis-event-bus.js';
import type { RedisTarget } from '../redis/redis-connection.js';
import type { EventBus } from './event-bus.js';
import { MemoryEventBus } from './memory-event-bus.js';
import { PartitionedEventBus } from './partitioned-event-bus.js';
import { RedisEventBus } from './redis-event-bus.js';

/** Options of {@link createEventBus}. */
export interface EventBusOptions {
  /** Redis (one server, or a Cluster: sharded pub/sub), or undefined for the in-process bus. */
  redis: RedisTarget | undefined;
  hotLogMaxEvents: number;
  hotLogMaxAgeMs: number;
  /** In-process only: estimated bytes of the whole hot log (Redis bounds each topic; see docs/scaling.md). */
  hotLogMaxBytes?: number;
  /** Key prefix (and hash tag) of the Redis bus; deployments sharing one Redis need distinct ones. */
  redisKeyPrefix?: string;
  /** Redis only: more than 1 splits the bus into partitions of their own slots (partitioned-event-bus.ts). */
  redisBusPartitions?: number;
  /** Where the bus reports what it cannot throw (failed sweeps, events lost in a long blip, listeners that threw). */
  logger?: BusLogger;
  /** Redis only: the `redis` circuit breaker (see redis-event-bus.ts, "Redis unreachable"). */
  breaker?: Pick<CircuitBreakerOptions, 'failureThreshold' | 'coolDownMs' | 'onStateChange'>;
  /** Redis only: a command unanswered this long fails. */
  commandTimeoutMs?: number;
  /** Redis only: the self-addressed probe that catches a wedged subscriber. */
  probe?: RedisEventBusOptions['probe'];
  /** Redis only: a topic's streams should resume (see RedisEventBusOptions.onLiveGap). */
  onLiveGap?: (topic: string) => void;
  /** Redis only: told of each event delivered locally only, while Redis was unreachable. */
  onLocalPublish?: (event: EventRecord) => void;
  /** Redis only: this instance starts serving on its own (see RedisEventBusOptions.onIsland). */
  onIsland?: (since: number) => void;
}

/** The bus the configuration asks for: Redis when `REDIS_URL` or `REDIS_CLUSTER_NODES` is set, else in-process. */
export function createEventBus(options: EventBusOptions): EventBus {
  const limits = { maxEvents: options.hotLogMaxEvents, maxAgeMs: options.hotLogMaxAgeMs };
  if (options.redis !== undefined) {
    const redis: RedisEventBusOptions = {
      url: options.redis,
      limits,
      keyPrefix: options.redisKeyPrefix,
      logger: options.logger,
      breaker: options.breaker,
      commandTimeoutMs: options.commandTimeoutMs,
      probe: options.probe,
      onLiveGap: options.onLiveGap,
      onLocalPublish: options.onLocalPublish,
      onIsland: options.onIsland,
    };
    const partitions = options.redisBusPartitions ?? 1;
    return partitions > 1 ? new PartitionedEventBus({ ...redis, partitions }) : new RedisEventBus(redis);
  }
  return new MemoryEventBus({ ...limits, maxBytes: options.hotLogMaxBytes }, Date.now, options.logger);
}
