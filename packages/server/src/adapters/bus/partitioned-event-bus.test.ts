import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireRedisServer } from '../../../test/helpers/redis-process.js';
import { startRedisCluster, type RedisClusterProcess } from '../../../test/helpers/redis-cluster.js';
import { requireService, TEST_REDIS_URL } from '../../../test/helpers/services.js';
import { ID_SLOTS } from '../../core/event-id.js';
import { keySlot } from '../redis/key-slot.js';
import { parseClusterNode, type RedisTarget } from '../redis/redis-connection.js';
import { describeEventBusContract } from './event-bus.contract.js';
import { BusLayoutError } from './event-bus.js';
import { PartitionedEventBus, topicPartition, type PartitionedEventBusOptions } from './partitioned-event-bus.js';
import { partitionKeyPrefix, redisBusKeys } from './redis-bus-keys.js';
import { RedisEventBus } from './redis-event-bus.js';
import { notificationDraft as draft, waitUntil } from '../../../test/helpers/bus-events.js';

/**
 * A bus split into partitions (docs/sharding-the-bus.md): the contract every bus adapter keeps, on
 * one Redis and on a Redis Cluster of the test's own, and what only partitions need: disjoint id
 * residues, one id order across partitions whose counters lag each other (the merge barrier), and
 * reads and heads that no later id of any partition can pass under.
 */

const redisAvailable = await requireService('Redis', TEST_REDIS_URL);
const clusterAvailable = requireRedisServer();

/** A topic name of `partition` of `count`, distinct per `tag`. */
function topicIn(partition: number, count: number, tag: string): string {
  for (let index = 0; ; index++) {
    const topic = `doc:${tag}-${index}`;
    if (topicPartition(topic, count) === partition) return topic;
  }
}

describe('partitionKeyPrefix', () => {
  it('puts partition k of n in the k-th of n equal slot ranges, the same prefix every time', () => {
    for (const count of [2, 3, 4, 16]) {
      for (let index = 0; index < count; index++) {
        const prefix = partitionKeyPrefix('is', index, count);
        expect(prefix).toBe(partitionKeyPrefix('is', index, count));
        expect(prefix.startsWith(`is.p${index}-`)).toBe(true);
        const slot = keySlot(redisBusKeys(prefix).seq);
        expect(slot).toBeGreaterThanOrEqual(Math.floor((index * 16_384) / count));
        expect(slot).toBeLessThan(Math.floor(((index + 1) * 16_384) / count));
      }
    }
  });

  it('refuses a partition count it cannot give residues to', () => {
    for (const partitions of [1, 17, 2.5]) {
      expect(
        () => new PartitionedEventBus({ url: TEST_REDIS_URL, limits: { maxEvents: 1, maxAgeMs: 1 }, partitions }),
      ).toThrow(/2 to 16 partitions/);
    }
  });
});

/** The tests that run on one Redis and on the cluster alike. */
function describePartitionedBus(name: string, target: () => RedisTarget, admin: () => Redis | Cluster): void {
  describe(`PartitionedEventBus: ${name}`, () => {
    const open: PartitionedEventBus[] = [];
    const freshPrefix = () => `pb-${randomBytes(5).toString('hex')}`;

    function createBus(prefix: string, overrides: Partial<PartitionedEventBusOptions> = {}): PartitionedEventBus {
      const bus = new PartitionedEventBus({
        url: target(),
        limits: { maxEvents: 100, maxAgeMs: 3_600_000 },
        keyPrefix: prefix,
        connectionName: `${prefix}-${open.length}`,
        partitions: 3,
        ...overrides,
      });
      open.push(bus);
      return bus;
    }

    async function startedBus(prefix: string, overrides: Partial<PartitionedEventBusOptions> = {}) {
      const bus = createBus(prefix, overrides);
      const floor = Date.now() * 1000;
      await bus.start({ idFloor: floor, coveredFrom: floor });
      return bus;
    }

    /** Moves partition `index`'s counter `ahead` ids past the clock, as a burst of publishes would. */
    async function runAhead(prefix: string, index: number, ahead: number): Promise<number> {
      const seqKey = redisBusKeys(partitionKeyPrefix(prefix, index, 3)).seq;
      const value = Date.now() * 1000 + ahead;
      await admin().set(seqKey, String(value));
      return value;
    }

    afterEach(async () => {
      await Promise.all(open.splice(0).map((bus) => bus.close()));
    });

    describeEventBusContract(`partitioned, ${name}`, {
      create: async (limits) => createBus(freshPrefix(), { limits }),
    });

    it('refuses to start beside instances that run the bus with another number of partitions', async () => {
      const prefix = freshPrefix();
      const floor = Date.now() * 1000;
      const single = new RedisEventBus({
        url: target(),
        limits: { maxEvents: 100, maxAgeMs: 3_600_000 },
        keyPrefix: prefix,
        connectionName: `${prefix}-single`,
      });
      await single.start({ idFloor: floor, coveredFrom: floor });
      try {
        const refused = createBus(prefix).start({ idFloor: floor, coveredFrom: floor });
        await expect(refused).rejects.toThrow(BusLayoutError);
        await expect(refused).rejects.toThrow(/REDIS_BUS_PARTITIONS is 3, .* partitions: 1 \(an id slot lease until /);
      } finally {
        // A clean stop gives its lease back.
        await single.close();
      }
      await startedBus(prefix);
      const late = new RedisEventBus({
        url: target(),
        limits: { maxEvents: 100, maxAgeMs: 3_600_000 },
        keyPrefix: prefix,
        connectionName: `${prefix}-late`,
      });
      try {
        await expect(late.start({ idFloor: floor, coveredFrom: floor })).rejects.toThrow(
          /REDIS_BUS_PARTITIONS is 1, .* partitions: 3 \(an id slot lease until /,
        );
      } finally {
        await late.close();
      }
    });

    it('gives each partition its own residue of the id space, so partitions never share an id', async () => {
      const prefix = freshPrefix();
      const bus = await startedBus(prefix);
      for (let partition = 0; partition < 3; partition++) {
        const topic = topicIn(partition, 3, 'residue');
        for (let index = 0; index < 3; index++) {
          expect((await bus.publish(draft(topic))).id % ID_SLOTS).toBe(partition);
        }
      }
    });

    it('hands out the events of partitions whose counters lag each other in one id order, losing none', async () => {
      const prefix = freshPrefix();
      const reader = await startedBus(prefix);
      const [x, y] = [topicIn(0, 3, 'order'), topicIn(1, 3, 'order')];
      const got: number[] = [];
      await reader.subscribe(x, (event) => got.push(event.id));
      await reader.subscribe(y, (event) => got.push(event.id));
      // Partition 1 runs 5 s ahead of the clock: its ids are above partition 0's for a while.
      await runAhead(prefix, 1, 5_000_000);
      // Two publishers that never saw each other's ids (each its own instance).
      const onP0 = await startedBus(prefix);
      const onP1 = await startedBus(prefix);
      const published: number[] = [];
      for (let round = 0; round < 5; round++) {
        const [high, low] = await Promise.all([onP1.publish(draft(y)), onP0.publish(draft(x))]);
        published.push(high.id, low.id);
      }
      await waitUntil(() => got.length === published.length);
      expect([...got].sort((a, b) => a - b)).toEqual(got);
      expect([...got].sort((a, b) => a - b)).toEqual([...published].sort((a, b) => a - b));
    });

    it('a read promises the seam across partitions: every id issued after it is above its liveAbove', async () => {
      const prefix = freshPrefix();
      const bus = await startedBus(prefix);
      // Another instance, started before partition 2 ran ahead: it never sees those ids.
      const other = await startedBus(prefix);
      const [x, y] = [topicIn(0, 3, 'seam'), topicIn(2, 3, 'seam')];
      const ahead = await runAhead(prefix, 2, 7_000_000);
      const before = await bus.publish(draft(y));
      expect(before.id).toBeGreaterThan(ahead);
      const read = await bus.read([x, y], 0, 100);
      expect(read.events.map((event) => event.id)).toEqual([before.id]);
      expect(read.liveAbove).toBeGreaterThanOrEqual(before.id);
      const after = await other.publish(draft(x));
      expect(after.id).toBeGreaterThan(read.liveAbove ?? Infinity);
      expect((await other.headId()) >= after.id).toBe(true);
    });

    it('its head is one that no partition issues at or below afterwards', async () => {
      const prefix = freshPrefix();
      const bus = await startedBus(prefix);
      // Started before partition 1 runs ahead: it never sees those ids.
      const other = await startedBus(prefix);
      await runAhead(prefix, 1, 3_000_000);
      const head = await bus.headId();
      for (let partition = 0; partition < 3; partition++) {
        expect((await other.publish(draft(topicIn(partition, 3, 'head')))).id).toBeGreaterThan(head);
      }
    });
  });
}

describe.skipIf(!redisAvailable)('on one Redis', () => {
  let admin: Redis;
  beforeAll(() => {
    admin = new Redis(TEST_REDIS_URL);
  });
  afterAll(async () => {
    // Every key a run made (never FLUSHDB: Redis is shared).
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', '{pb-*', 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await admin.del(...keys);
    } while (cursor !== '0');
    admin.disconnect();
  });

  describePartitionedBus(
    'one Redis',
    () => TEST_REDIS_URL,
    () => admin,
  );

  it('a tick stores the value it tells: a counter raised to the floor its bus passed, told after what came before', async () => {
    const prefix = `pb-${randomBytes(5).toString('hex')}`;
    const ticks: number[] = [];
    const got: number[] = [];
    const bus = new RedisEventBus({
      url: TEST_REDIS_URL,
      limits: { maxEvents: 100, maxAgeMs: 3_600_000 },
      keyPrefix: prefix,
      partition: { index: 1, count: 3, deploymentPrefix: prefix, onTick: (value) => ticks.push(value) },
    });
    try {
      const floor = Date.now() * 1000;
      await bus.start({ idFloor: floor, coveredFrom: floor });
      await bus.subscribe('doc:t', (event) => got.push(event.id));
      const published = await bus.publish(draft('doc:t'));
      expect(published.id % ID_SLOTS).toBe(1);
      // Known to this bus (another partition's id), not yet to its counter.
      bus.observe(published.id + 5_000_000);
      const value = await bus.tick(published.id);
      expect(value).toBe(published.id + 5_000_000);
      expect(Number(await admin.get(redisBusKeys(prefix).seq))).toBe(value);
      await waitUntil(() => ticks.length === 1);
      expect(ticks).toEqual([value]);
      expect(got).toEqual([published.id]);
      expect((await bus.publish(draft('doc:t'))).id).toBeGreaterThan(value);
    } finally {
      await bus.close();
    }
  });

  it('keeps the order when one partition’s subscriber drops: what it re-reads goes first', async () => {
    const prefix = `pb-${randomBytes(5).toString('hex')}`;
    const open: PartitionedEventBus[] = [];
    try {
      const make = async (name: string) => {
        const bus = new PartitionedEventBus({
          url: TEST_REDIS_URL,
          limits: { maxEvents: 100, maxAgeMs: 3_600_000 },
          keyPrefix: prefix,
          connectionName: `${prefix}-${name}`,
          partitions: 3,
        });
        open.push(bus);
        const floor = Date.now() * 1000;
        await bus.start({ idFloor: floor, coveredFrom: floor });
        return bus;
      };
      const reader = await make('reader');
      const publisher = await make('publisher');
      const [x, y] = [topicIn(0, 3, 'drop'), topicIn(1, 3, 'drop')];
      const got: number[] = [];
      await reader.subscribe(x, (event) => got.push(event.id));
      await reader.subscribe(y, (event) => got.push(event.id));
      // The reader's subscriber of partition 0: what it misses now comes back by a re-read, late.
      const clients = String(await admin.client('LIST'));
      const line = clients.split('\n').find((entry) => entry.includes(` name=${prefix}-reader:p0:sub `));
      const id = /(?:^|\s)id=(\d+)/.exec(line ?? '')?.[1];
      expect(id).toBeDefined();
      expect(Number(await admin.client('KILL', 'ID', id ?? ''))).toBe(1);
      const published: number[] = [];
      for (let round = 0; round < 3; round++) {
        published.push((await publisher.publish(draft(x))).id);
        published.push((await publisher.publish(draft(y))).id);
      }
      await waitUntil(() => got.length === published.length);
      expect(got).toEqual(published);
    } finally {
      await Promise.all(open.map((bus) => bus.close()));
    }
  });
});

describe.skipIf(!clusterAvailable)('on a Redis Cluster', () => {
  let cluster: RedisClusterProcess;
  let admin: Cluster;
  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    admin = new Cluster(cluster.nodes.map(parseClusterNode));
  }, 60_000);
  afterAll(async () => {
    admin?.disconnect();
    await cluster?.stop();
  });

  describePartitionedBus(
    '3-primary Redis Cluster',
    () => ({ clusterNodes: cluster.nodes }),
    () => admin,
  );

  it('puts three partitions on three different primaries', async () => {
    const owners = await Promise.all(
      [0, 1, 2].map(
        async (index) => (await cluster.masterOf(keySlot(redisBusKeys(partitionKeyPrefix('is', index, 3)).seq))).id,
      ),
    );
    expect(new Set(owners).size).toBe(3);
  });
});
