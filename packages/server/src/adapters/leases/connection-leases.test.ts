import type { FastifyBaseLogger } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasRedisServer, startRedisProcess, type RedisProcess } from '../../../test/helpers/redis-process.js';
import { MemoryEventBus } from '../bus/memory-event-bus.js';
import { TooManyConnectionsError } from '../../core/errors.js';
import { createLogger } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import { ConnectionManager } from '../../services/sse/connection-manager.js';
import { RedisConnectionLeases } from './connection-leases.js';

const available = hasRedisServer();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(!available)('cluster-wide connection leases (own Redis)', () => {
  let redis: RedisProcess;
  let admin: Redis;
  const leases: RedisConnectionLeases[] = [];
  const managers: ConnectionManager[] = [];

  function createLeases(ttlMs = 60_000): RedisConnectionLeases {
    const created = new RedisConnectionLeases({ url: redis.url, keyPrefix: 'lt', ttlMs });
    leases.push(created);
    return created;
  }

  function createManager(shared: RedisConnectionLeases): ConnectionManager {
    const manager = new ConnectionManager({
      bus: new MemoryEventBus({ maxEvents: 10, maxAgeMs: 60_000 }),
      metrics: new Metrics({ defaultMetrics: false }),
      logger: createLogger({ level: 'silent' }) as FastifyBaseLogger,
      maxConnectionsPerUser: 2,
      maxConnectionsPerIp: 100,
      heartbeatMs: 60_000,
      leases: shared,
    });
    managers.push(manager);
    return manager;
  }

  /** Scripts this test's own Redis has run (EVAL and EVALSHA). */
  async function scriptCalls(): Promise<number> {
    const stats = await admin.info('commandstats');
    return ['evalsha', 'eval'].reduce(
      (sum, name) => sum + Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0),
      0,
    );
  }

  beforeAll(async () => {
    redis = await startRedisProcess();
    admin = new Redis(redis.url);
  });
  afterEach(async () => {
    for (const manager of managers.splice(0)) manager.stop();
    await Promise.all(leases.splice(0).map((created) => created.close()));
    await admin.flushall();
  });
  afterAll(async () => {
    admin?.disconnect();
    await redis?.stop();
  });

  it('grants up to the limit, renews an existing lease, refuses past it and frees on release', async () => {
    const store = createLeases();
    await admin.ping();
    await expect(store.acquire({ userId: 'u', connectionId: 'c1' }, 2)).resolves.toEqual({
      granted: true,
      counted: true,
    });
    await expect(store.acquire({ userId: 'u', connectionId: 'c2' }, 2)).resolves.toEqual({
      granted: true,
      counted: true,
    });
    await expect(store.acquire({ userId: 'u', connectionId: 'c2' }, 2)).resolves.toMatchObject({ granted: true });
    await expect(store.acquire({ userId: 'u', connectionId: 'c3' }, 2)).resolves.toEqual({ granted: false, held: 2 });
    await expect(store.acquire({ userId: 'other', connectionId: 'c4' }, 2)).resolves.toMatchObject({ granted: true });
    await store.release({ userId: 'u', connectionId: 'c1' });
    await expect(store.acquire({ userId: 'u', connectionId: 'c3' }, 2)).resolves.toMatchObject({ granted: true });
    expect(await admin.zrange('{lt}:conns:u', 0, -1)).toEqual(['c2', 'c3']);
  });

  it('expires leases that are not refreshed, keeps refreshed ones, and re-adds them after Redis lost them', async () => {
    const store = createLeases(300);
    await store.acquire({ userId: 'u', connectionId: 'dead' }, 2);
    await store.acquire({ userId: 'u', connectionId: 'alive' }, 2);
    for (let round = 0; round < 4; round++) {
      await sleep(120);
      await store.refresh([{ userId: 'u', connectionId: 'alive' }]);
    }
    expect(await admin.zrange('{lt}:conns:u', 0, -1)).toEqual(['alive']);
    await admin.flushall();
    await store.refresh([{ userId: 'u', connectionId: 'alive' }]);
    await expect(store.acquire({ userId: 'u', connectionId: 'new' }, 2)).resolves.toMatchObject({ granted: true });
    await expect(store.acquire({ userId: 'u', connectionId: 'more' }, 2)).resolves.toEqual({ granted: false, held: 2 });
    expect(await admin.pttl('{lt}:conns:u')).toBeGreaterThan(0);
  });

  it('renews the leases of many users with a few script calls, not one per user', async () => {
    const store = createLeases(60_000);
    // Waits for the connection (a refresh before it is skipped, as after a Redis outage).
    await store.acquire({ userId: 'm0', connectionId: 'c0' }, 10);
    const leased = Array.from({ length: 1_200 }, (_, index) => ({
      userId: `m${index % 1_000}`,
      connectionId: `c${index}`,
    }));
    await store.refresh(leased);
    const before = await scriptCalls();
    await store.refresh(leased);
    // 1,200 leases in batches of 500: three scripts (sent together), whatever the number of users.
    expect((await scriptCalls()) - before).toBe(3);
    expect(await admin.zrange('{lt}:conns:m0', 0, -1)).toEqual(['c0', 'c1000']);
    expect(await admin.zcard('{lt}:conns:m999')).toBe(1);
    expect(await admin.pttl('{lt}:conns:m999')).toBeGreaterThan(50_000);
  });

  it('takes the acquisitions of one turn with one script, in order, each with its own answer', async () => {
    const store = createLeases(60_000);
    await store.acquire({ userId: 'held', connectionId: 'h0' }, 10); // connected, scripts loaded
    await store.acquire({ userId: 'full', connectionId: 'f0' }, 10);
    const before = await scriptCalls();
    const answers = await Promise.all([
      store.acquire({ userId: 'u', connectionId: 'c1' }, 2),
      store.acquire({ userId: 'v', connectionId: 'd1' }, 2),
      store.acquire({ userId: 'u', connectionId: 'c2' }, 2),
      // The two above of the same user count: a third is past the limit, as in three calls in a row.
      store.acquire({ userId: 'u', connectionId: 'c3' }, 2),
      store.acquire({ userId: 'held', connectionId: 'h0' }, 1), // a renewal, not a new stream
      store.acquire({ userId: 'full', connectionId: 'f1' }, 1),
    ]);
    expect(await scriptCalls()).toBe(before + 1);
    expect(answers).toEqual([
      { granted: true, counted: true },
      { granted: true, counted: true },
      { granted: true, counted: true },
      { granted: false, held: 2 },
      { granted: true, counted: true },
      { granted: false, held: 1 },
    ]);
    expect(await admin.zrange('{lt}:conns:u', 0, -1)).toEqual(['c1', 'c2']);
    expect(await admin.zrange('{lt}:conns:full', 0, -1)).toEqual(['f0']);
  });

  it('grants uncounted only the lease whose key Redis cannot use, not the others of its turn', async () => {
    const store = createLeases(60_000);
    await store.acquire({ userId: 'warm', connectionId: 'w' }, 2);
    await admin.set('{lt}:conns:broken', 'not a sorted set');
    const answers = await Promise.all([
      store.acquire({ userId: 'a', connectionId: 'a1' }, 2),
      store.acquire({ userId: 'broken', connectionId: 'b1' }, 2),
      store.acquire({ userId: 'c', connectionId: 'c1' }, 2),
    ]);
    expect(answers).toEqual([
      { granted: true, counted: true },
      { granted: true, counted: false },
      { granted: true, counted: true },
    ]);
    expect(await admin.zrange('{lt}:conns:a', 0, -1)).toEqual(['a1']);
    expect(await admin.zrange('{lt}:conns:c', 0, -1)).toEqual(['c1']);
  });

  it('gives back the leases of one turn with one script per 500, none with a command of its own', async () => {
    const store = createLeases(60_000);
    const leased = Array.from({ length: 1_200 }, (_, index) => ({
      userId: `r${index % 700}`,
      connectionId: `c${index}`,
    }));
    for (let i = 0; i < leased.length; i += 400) {
      await Promise.all(leased.slice(i, i + 400).map((lease) => store.acquire(lease, 10)));
    }
    expect(await admin.zcard('{lt}:conns:r0')).toBe(2);
    await admin.config('RESETSTAT');
    // A shutdown: every stream ends in the same turn.
    await Promise.all(leased.map((lease) => store.release(lease)));
    // The old way, a ZREM per lease, ran no script at all.
    expect(await scriptCalls()).toBe(3);
    expect(await admin.keys('{lt}:conns:*')).toEqual([]);
  });

  it('sends the releases of its last turn before it closes', async () => {
    const store = createLeases(60_000);
    await store.acquire({ userId: 'z', connectionId: 'z1' }, 2);
    const released = store.release({ userId: 'z', connectionId: 'z1' });
    await store.close();
    await released;
    expect(await admin.exists('{lt}:conns:z')).toBe(0);
  });

  it('gives back the other leases of a turn when one key cannot be used', async () => {
    const store = createLeases(60_000);
    await store.acquire({ userId: 'a', connectionId: 'a1' }, 2);
    await store.acquire({ userId: 'c', connectionId: 'c1' }, 2);
    await admin.set('{lt}:conns:broken', 'not a sorted set');
    await Promise.all([
      store.release({ userId: 'a', connectionId: 'a1' }),
      store.release({ userId: 'broken', connectionId: 'b1' }),
      store.release({ userId: 'c', connectionId: 'c1' }),
    ]);
    expect(await admin.exists('{lt}:conns:a', '{lt}:conns:c')).toBe(0);
    expect(await admin.get('{lt}:conns:broken')).toBe('not a sorted set');
  });

  it('grants uncounted when Redis is unreachable', async () => {
    const unreachable = new RedisConnectionLeases({
      url: 'redis://127.0.0.1:1',
      ttlMs: 1_000,
      redisOptions: { retryStrategy: () => null },
    });
    leases.push(unreachable);
    await expect(unreachable.acquire({ userId: 'u', connectionId: 'c' }, 1)).resolves.toEqual({
      granted: true,
      counted: false,
    });
    await unreachable.release({ userId: 'u', connectionId: 'c' });
    await unreachable.refresh([{ userId: 'u', connectionId: 'c' }]);
  });

  it('makes ConnectionManager.admit count the user across managers (instances)', async () => {
    const a = createManager(createLeases());
    const b = createManager(createLeases());
    const first = await a.admit({ userId: 'u', ip: '10.0.0.1', id: 'a1' });
    await b.admit({ userId: 'u', ip: '10.0.0.2', id: 'b1' });
    await expect(b.admit({ userId: 'u', ip: '10.0.0.2', id: 'b2' })).rejects.toBeInstanceOf(TooManyConnectionsError);
    // The refusal gave the local slot back: B holds exactly one stream of the user.
    expect(b.stats()).toMatchObject({ users: 1 });
    first();
    first();
    expect(a.stats()).toMatchObject({ users: 0 });
    await expect.poll(() => admin.zcard('{lt}:conns:u')).toBe(1);
    const again = await b.admit({ userId: 'u', ip: '10.0.0.2', id: 'b2' });
    again();
  });
});
