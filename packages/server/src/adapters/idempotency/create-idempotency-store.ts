import type { RedisTarget } from '../redis/redis-connection.js';
import type { IdempotencyStore } from './idempotency-store.js';
import { MemoryIdempotencyStore } from './memory-idempotency-store.js';
import { RedisIdempotencyStore } from './redis-idempotency-store.js';

/** Options of {@link createIdempotencyStore}. */
export interface IdempotencyStoreOptions {
  /** Redis (one server or a Cluster), or undefined for in-process. */
  redis: RedisTarget | undefined;
  redisKeyPrefix?: string;
  /** Redis only: a command unanswered this long fails. */
  commandTimeoutMs?: number;
}

/** Redis when `REDIS_URL` or `REDIS_CLUSTER_NODES` is set (a retry may land on any instance), else in-process. */
export function createIdempotencyStore(options: IdempotencyStoreOptions): IdempotencyStore {
  if (options.redis !== undefined) {
    return new RedisIdempotencyStore({
      url: options.redis,
      keyPrefix: options.redisKeyPrefix,
      commandTimeoutMs: options.commandTimeoutMs,
    });
  }
  return new MemoryIdempotencyStore();
}
