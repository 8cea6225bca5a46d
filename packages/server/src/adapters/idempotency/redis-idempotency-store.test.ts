import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireService, TEST_REDIS_URL } from '../../../test/helpers/services.js';
import { describeIdempotencyStoreContract } from './idempotency-store.contract.js';
import { RedisIdempotencyStore } from './redis-idempotency-store.js';

const available = await requireService('Redis', TEST_REDIS_URL);

describe.skipIf(!available)('RedisIdempotencyStore', () => {
  /** One prefix per run; its keys are deleted at the end (Redis is shared: never FLUSHDB). */
  const prefix = `test-idem-${randomBytes(6).toString('hex')}`;
  let admin: Redis;

  beforeAll(() => {
    admin = new Redis(TEST_REDIS_URL);
  });
  afterAll(async () => {
    const keys = await admin.keys(`${prefix}:*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
  });

  describeIdempotencyStoreContract('redis', {
    create: async (retention) => new RedisIdempotencyStore({ url: TEST_REDIS_URL, keyPrefix: prefix, ...retention }),
    sharedAcrossStores: true,
  });

  it('keeps each key with its TTL in Redis (24 h for an answer), under the prefix', async () => {
    const store = new RedisIdempotencyStore({ url: TEST_REDIS_URL, keyPrefix: prefix });
    try {
      const outcome = await store.begin('ttl-key', 'f');
      if (outcome.kind !== 'claimed') throw new Error(outcome.kind);
      const claimTtl = await admin.pttl(`${prefix}:idempotency:ttl-key`);
      expect(claimTtl).toBeGreaterThan(50_000);
      expect(claimTtl).toBeLessThanOrEqual(60_000);
      await store.complete(outcome.claim, { status: 201, body: '{"id":"1"}' });
      const answerTtl = await admin.pttl(`${prefix}:idempotency:ttl-key`);
      expect(answerTtl).toBeGreaterThan(86_000_000);
      expect(answerTtl).toBeLessThanOrEqual(86_400_000);
    } finally {
      await store.close();
    }
  });

  it('treats an unreadable entry as another request’s key, never replaying it', async () => {
    const store = new RedisIdempotencyStore({ url: TEST_REDIS_URL, keyPrefix: prefix });
    try {
      await admin.set(`${prefix}:idempotency:corrupt`, '{"status": 201', 'PX', 10_000);
      expect(await store.begin('corrupt', 'f')).toEqual({ kind: 'reused' });
    } finally {
      await store.close();
    }
  });

  it('fails loudly when Redis is unreachable', async () => {
    const store = new RedisIdempotencyStore({
      url: 'redis://127.0.0.1:1',
      redisOptions: { retryStrategy: () => null, maxRetriesPerRequest: 0 },
    });
    try {
      await expect(store.begin('k', 'f')).rejects.toThrow();
    } finally {
      await store.close();
    }
  });
});
