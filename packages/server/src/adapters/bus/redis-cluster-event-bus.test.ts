import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireRedisServer } from '../../../test/helpers/redis-process.js';
import { startRedisCluster, type RedisClusterProcess } from '../../../test/helpers/redis-cluster.js';
import type { EventRecord } from '../../core/event-record.js';
import { parseClusterNode } from '../redis/redis-connection.js';
import { describeEventBusContract } from './event-bus.contract.js';
import { RedisEventBus, redisBusKeys, type RedisEventBusOptions } from './redis-event-bus.js';
import { notificationDraft as draft, waitUntil } from '../../../test/helpers/bus-events.js';

/**
 * The Redis bus on a Redis Cluster of the test's own (3 primaries on free ports): the contract
 * every bus adapter keeps, sharded pub/sub (SPUBLISH / SSUBSCRIBE, never the cluster-wide
 * PUBLISH), every key and channel of one deployment on one slot, and two instances delivering
 * each other's events.
 */

const available = requireRedisServer();

describe.skipIf(!available)('RedisEventBus on a Redis Cluster (sharded pub/sub)', () => {
  let cluster: RedisClusterProcess;
  let admin: Cluster;
  const open: RedisEventBus[] = [];

  function createBus(prefix: string, overrides: Partial<RedisEventBusOptions> = {}): RedisEventBus {
    const bus = new RedisEventBus({
      url: { clusterNodes: cluster.nodes },
      limits: { maxEvents: 100, maxAgeMs: 3_600_000 },
      keyPrefix: prefix,
      connectionName: `${prefix}-${open.length}`,
      ...overrides,
    });
    open.push(bus);
    return bus;
  }

  async function startedBus(prefix: string, overrides: Partial<RedisEventBusOptions> = {}): Promise<RedisEventBus> {
    const bus = createBus(prefix, overrides);
    const floor = Date.now() * 1000;
    await bus.start({ idFloor: floor, coveredFrom: floor });
    return bus;
  }

  const freshPrefix = () => `cl-bus-${randomBytes(5).toString('hex')}`;

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    admin = new Cluster(cluster.nodes.map(parseClusterNode));
  }, 60_000);
  afterEach(async () => {
    await Promise.all(open.splice(0).map((bus) => bus.close()));
  });
  afterAll(async () => {
    admin?.disconnect();
    await cluster?.stop();
  });

  describeEventBusContract('redis cluster', { create: async (limits) => createBus(freshPrefix(), { limits }) });

  it('fans out over SSUBSCRIBE on the shard of the deployment slot, not over cluster-wide PUBLISH', async () => {
    const prefix = freshPrefix();
    const bus = await startedBus(prefix);
    const got: EventRecord[] = [];
    await bus.subscribe('doc:1', (event) => got.push(event));
    const channel = `${redisBusKeys(prefix).channelPrefix}doc:1`;
    // Every primary is asked: only the one that owns the slot has the (one) sharded subscriber.
    const shardCounts = await Promise.all(
      admin
        .nodes('master')
        .map(async (node) => ((await node.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number])[1]),
    );
    const classic = await Promise.all(
      admin
        .nodes('master')
        .map(async (node) => ((await node.call('PUBSUB', 'NUMSUB', channel)) as [string, number])[1]),
    );
    expect(shardCounts.length).toBe(3);
    expect(shardCounts.filter((count) => count > 0)).toEqual([1]);
    expect(classic).toEqual([0, 0, 0]);

    const published = await bus.publish(draft('doc:1'));
    await waitUntil(() => got.length === 1);
    expect(got[0]?.id).toBe(published.id);
  });

  it('loses nothing when its sharded subscriber connection drops: the log is re-read after the re-subscribe', async () => {
    const prefix = freshPrefix();
    const publisher = await startedBus(prefix);
    const reader = await startedBus(prefix, { connectionName: `${prefix}-reader` });
    const got: EventRecord[] = [];
    await reader.subscribe('doc:blip', (event) => got.push(event));
    const ids = [(await publisher.publish(draft('doc:blip', 'before'))).id];
    await waitUntil(() => got.length === 1);
    // The reader's sharded subscriber, on the primary that owns the deployment's slot.
    let killed = 0;
    for (const node of admin.nodes('master')) {
      const list = String(await node.client('LIST'));
      for (const line of list.split('\n').filter((entry) => entry.includes(`(ssubscriber):${prefix}-reader:sub `))) {
        const id = /(?:^|\s)id=(\d+)/.exec(line)?.[1];
        if (id !== undefined) killed += Number(await node.client('KILL', 'ID', id));
      }
    }
    expect(killed).toBe(1);
    // Published at once, before ioredis has even seen the connection end.
    for (let index = 0; index < 5; index++) ids.push((await publisher.publish(draft('doc:blip', `during${index}`))).id);
    await waitUntil(() => got.length >= ids.length);
    ids.push((await publisher.publish(draft('doc:blip', 'after'))).id);
    await waitUntil(() => got.length >= ids.length);
    expect(got.map((event) => event.id)).toEqual(ids);
  });

  it('keeps every key and channel of a deployment on one slot, whatever the topic', async () => {
    const prefix = freshPrefix();
    const bus = await startedBus(prefix);
    for (const topic of ['doc:1', 'user:u7', 'broadcast']) await bus.publish(draft(topic));
    const keys = redisBusKeys(prefix);
    const slotOf = async (key: string) => Number(await admin.cluster('KEYSLOT', key));
    const slot = await slotOf(keys.seq);
    for (const key of [
      keys.epoch,
      keys.trim,
      keys.active,
      keys.slots,
      `${keys.logPrefix}doc:1`,
      `${keys.logPrefix}user:u7`,
    ]) {
      expect(await slotOf(key)).toBe(slot);
    }
    expect(await slotOf(`${keys.channelPrefix}broadcast`)).toBe(slot);
    expect(await admin.exists(`${keys.logPrefix}broadcast`)).toBe(1);
  });

  it('two instances on the cluster deliver each other’s events, in one id order, and resume from the log', async () => {
    const prefix = freshPrefix();
    const a = await startedBus(prefix);
    const b = await startedBus(prefix);
    const onA: EventRecord[] = [];
    const onB: EventRecord[] = [];
    await a.subscribe('doc:x', (event) => onA.push(event));
    await b.subscribe('doc:x', (event) => onB.push(event));
    const ids: number[] = [];
    for (let index = 0; index < 10; index++)
      ids.push((await (index % 2 === 0 ? a : b).publish(draft('doc:x', `e${index}`))).id);
    await waitUntil(() => onA.length === 10 && onB.length === 10);
    expect(onA.map((event) => event.id)).toEqual(ids);
    expect(onB.map((event) => event.id)).toEqual(ids);
    expect([...ids].sort((x, y) => x - y)).toEqual(ids);
    // A client of A resumes on B from the 4th event: exactly the rest, no gap.
    const read = await b.read(['doc:x'], ids[3] ?? 0, 100);
    expect(read.gapTopics).toEqual([]);
    expect(read.events.map((event) => event.id)).toEqual(ids.slice(4));
  });
});
