import type { IdempotencyStore } from './idempotency-store.js';
import { MemoryIdempotencyStore } from './memory-idempotency-store.js';
import { RedisIdempotencyStore } from './redis-idempotency-store.js';

/** Options of {@link createIdempotencyStore}. */
export interface IdempotencyStoreOptions {
  redisUrl: string | undefined;
  redisKeyPrefix?: string;
  /** Redis only: a command unanswered this long fails. */
  commandTimeoutMs?: number;
}

/** Redis when `REDIS_URL` is set (a retry may land on any instance), else in-process. */
export function createIdempotencyStore(options: IdempotencyStoreOptions): IdempotencyStore {
  if (options.redisUrl !== undefined) {
    return new RedisIdempotencyStore({
      url: options.redisUrl,
      keyPrefix: options.redisKeyPrefix,
      commandTimeoutMs: options.commandTimeoutMs,
    });
  }
  return new MemoryIdempotencyStore();
}
