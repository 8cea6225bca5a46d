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

/**
 * Two real server processes on a Redis Cluster of the test's own (REDIS_CLUSTER_NODES, sharded
 * pub/sub) and PostgreSQL: each delivers the other's events, and a client of one that dies
 * resumes on the other with nothing lost.
 */

const available = (await requireClusterServices()) && requireRedisServer();

const publish = (url: string, title: string, critical = false) =>
  publishNotification(url, { topic: 'user:rc', title, critical });

describe.skipIf(!available)('two instances on a Redis Cluster + PostgreSQL', () => {
  let redis: RedisClusterProcess;
  let cluster: Cluster;

  beforeAll(async () => {
    redis = await startRedisCluster(3);
    // REDIS_URL empty is unset: the instances get the cluster's nodes only.
    cluster = await startCluster({ size: 2, env: { REDIS_URL: '', REDIS_CLUSTER_NODES: redis.nodes.join(',') } });
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
    await redis?.stop();
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
