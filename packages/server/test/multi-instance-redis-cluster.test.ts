import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  clusterToken as token,
  publishNotification,
  requireClusterServices,
  startCluster,
  type Cluster,
} from './helpers/cluster.js';
import { requireRedisServer } from './helpers/redis-process.js';
import { startRedisCluster, type RedisClusterProcess } from './helpers/redis-cluster.js';
import { ofType, openStream, published } from './helpers/sse-reader.js';
import { topicPartition } from '../src/adapters/bus/partitioned-event-bus.js';
import { ID_SLOTS } from '../src/core/event-id.js';

/**
 * Two real server processes on a Redis Cluster of the test's own (REDIS_CLUSTER_NODES, sharded
 * pub/sub) and PostgreSQL: each delivers the other's events, and a client of one that dies
 * resumes on the other with nothing lost; with the bus in one slot, then in three partitions
 * (each pair of instances under its own key prefix, on the same Redis Cluster).
 */

const available = (await requireClusterServices()) && requireRedisServer();

const publish = (url: string, title: string, critical = false) =>
  publishNotification(url, { topic: 'user:rc', title, critical });

let redis: RedisClusterProcess;
/** Two instances on the cluster; REDIS_URL empty is unset, so they get the cluster's nodes only. */
const startPair = (env: Record<string, string> = {}) =>
  startCluster({ size: 2, env: { REDIS_URL: '', REDIS_CLUSTER_NODES: redis.nodes.join(','), ...env } });

beforeAll(async () => {
  if (available) redis = await startRedisCluster(3);
}, 60_000);

afterAll(async () => {
  await redis?.stop();
});

describe.skipIf(!available)('two instances on a Redis Cluster + PostgreSQL', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startPair();
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it('delivers each other’s events and resumes on the other instance after kill -9', async () => {
    const [a, b] = cluster.instances;
    if (!a || !b) throw new Error('instances missing');
    for (const instance of cluster.instances) {
      const ready = (await (await fetch(`${instance.url}/readyz`)).json()) as Record<
        string,
        { kind: string; status: string }
      >;
      expect(ready['bus']).toMatchObject({ kind: 'redis', status: 'up' });
    }
    const onA = await openStream(a.url, { token: await token('rc') });
    const onB = await openStream(b.url, { token: await token('rc') });
    const first = [await publish(b.url, 'one'), await publish(a.url, 'two', true), await publish(b.url, 'three')];
    await onA.waitFor((events) => published(events).length === 3);
    await onB.waitFor((events) => published(events).length === 3);
    expect(published(onA.events).map((event) => event.id)).toEqual(first);
    expect(published(onB.events).map((event) => event.id)).toEqual(first);

    await a.stop('SIGKILL');
    const whileDown = [await publish(b.url, 'four'), await publish(b.url, 'five', true)];
    const resumed = await openStream(b.url, { token: await token('rc'), lastEventId: first.at(-1) ?? '' });
    await resumed.waitFor((events) => events.some((event) => event.event === 'stream.resumed'));
    expect(published(resumed.events).map((event) => event.id)).toEqual(whileDown);
    expect(ofType(resumed.events, 'stream.resumed')).toEqual([{ replayed: 2, complete: true }]);
    onA.close();
    onB.close();
    resumed.close();
  }, 120_000);
});

describe.skipIf(!available)(
  'two instances on a Redis Cluster, the bus in three partitions (REDIS_BUS_PARTITIONS)',
  () => {
    let cluster: Cluster;
    // One topic in each partition, all on one stream.
    const docTopics = [0, 1, 2].map((partition) => {
      for (let index = 0; ; index++) if (topicPartition(`doc:rp${index}`, 3) === partition) return `doc:rp${index}`;
    });

    beforeAll(async () => {
      cluster = await startPair({ REDIS_BUS_PARTITIONS: '3' });
    }, 120_000);

    afterAll(async () => {
      await cluster?.stop();
    });

    it('a stream spanning every partition gets both instances’ events in one id order, and resumes on the other after kill -9', async () => {
      const [a, b] = cluster.instances;
      if (!a || !b) throw new Error('instances missing');
      for (const instance of cluster.instances) {
        const ready = (await (await fetch(`${instance.url}/readyz`)).json()) as Record<string, { status: string }>;
        expect(ready['bus']).toMatchObject({ status: 'up' });
      }
      const streamToken = await token('rp', undefined, docTopics);
      const onA = await openStream(a.url, { token: streamToken });
      const onB = await openStream(b.url, { token: streamToken });
      const first: string[] = [];
      for (let index = 0; index < 9; index++) {
        const via = index % 2 === 0 ? a.url : b.url;
        const topic = docTopics[index % 3] ?? '';
        first.push(await publishNotification(via, { topic, title: `e${index}`, critical: index % 4 === 0 }));
      }
      // Each partition's counter issues its own residue.
      expect(new Set(first.map((id) => Number(id) % ID_SLOTS))).toEqual(new Set([0, 1, 2]));
      for (const stream of [onA, onB]) {
        await stream.waitFor((events) => published(events).length === 9);
        const ids = published(stream.events).map((event) => Number(event.id));
        expect(ids).toEqual([...ids].sort((x, y) => x - y));
        expect(new Set(ids)).toEqual(new Set(first.map(Number)));
      }

      await a.stop('SIGKILL');
      const whileDown: string[] = [];
      for (let index = 0; index < 4; index++) {
        const topic = docTopics[(index + 1) % 3] ?? '';
        whileDown.push(await publishNotification(b.url, { topic, title: `d${index}`, critical: index === 1 }));
      }
      const last = published(onA.events).at(-1)?.id ?? '';
      const resumed = await openStream(b.url, { token: streamToken, lastEventId: last });
      await resumed.waitFor((events) => events.some((event) => event.event === 'stream.resumed'));
      expect(published(resumed.events).map((event) => event.id)).toEqual(whileDown);
      expect(ofType(resumed.events, 'stream.resumed')).toEqual([{ replayed: 4, complete: true }]);
      onA.close();
      onB.close();
      resumed.close();
    }, 120_000);
  },
);
