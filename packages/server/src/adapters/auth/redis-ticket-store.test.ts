import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireService, TEST_REDIS_URL } from '../../../test/helpers/services.js';
import type { Principal } from '../../core/principal.js';
import { RedisTicketStore } from './redis-ticket-store.js';

const available = await requireService('Redis', TEST_REDIS_URL);

const principal: Principal = {
  userId: 'u1',
  topics: ['doc:42'],
  scopes: ['events:publish'],
  expiresAt: 1_900_000_000_000,
};

describe.skipIf(!available)('RedisTicketStore', () => {
  /** One prefix per run; its keys are deleted at the end (Redis is shared: never FLUSHDB). */
  const prefix = `test-tickets-${randomBytes(6).toString('hex')}`;
  const open: RedisTicketStore[] = [];
  let admin: Redis;
  const store = () => {
    const created = new RedisTicketStore({ url: TEST_REDIS_URL, keyPrefix: prefix });
    open.push(created);
    return created;
  };

  beforeAll(() => {
    admin = new Redis(TEST_REDIS_URL);
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((created) => created.close()));
  });
  afterAll(async () => {
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await admin.del(...keys);
    } while (cursor !== '0');
    await admin.quit();
  });

  it('redeems a ticket once, with the principal it was issued for', async () => {
    const tickets = store();
    const ticket = await tickets.issue(principal, 30_000);
    expect(ticket).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(await tickets.consume(ticket)).toEqual(principal);
    expect(await tickets.consume(ticket)).toBeUndefined();
  });

  it('works across instances, and exactly once when they race for it', async () => {
    const [a, b, c] = [store(), store(), store()];
    const ticket = await a.issue(principal, 30_000);
    const results = await Promise.all([b.consume(ticket), c.consume(ticket), a.consume(ticket)]);
    expect(results.filter((result) => result !== undefined)).toEqual([principal]);
  });

  it('expires tickets with the TTL (set in Redis, not in the process)', async () => {
    const tickets = store();
    const ticket = await tickets.issue(principal, 80);
    const ttl = await admin.pttl(`${prefix}:ticket:${ticket}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(80);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(await tickets.consume(ticket)).toBeUndefined();
  });

  it('refuses unknown, malformed and corrupted tickets without throwing', async () => {
    const tickets = store();
    expect(await tickets.consume('A'.repeat(32))).toBeUndefined();
    expect(await tickets.consume('')).toBeUndefined();
    expect(await tickets.consume('x*:{}'.repeat(8))).toBeUndefined();
    const corrupted = 'B'.repeat(32);
    await admin.set(`${prefix}:ticket:${corrupted}`, '{"userId": 5}', 'PX', 10_000);
    expect(await tickets.consume(corrupted)).toBeUndefined();
  });

  it('fails loudly when Redis is unreachable', async () => {
    const tickets = new RedisTicketStore({
      url: 'redis://127.0.0.1:1',
      redisOptions: { retryStrategy: () => null, maxRetriesPerRequest: 0 },
    });
    open.push(tickets);
    await expect(tickets.issue(principal, 1_000)).rejects.toThrow();
  });
});
