import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { EventBus } from '../packages/server/src/adapters/bus/event-bus.js';
import { PartitionedEventBus } from '../packages/server/src/adapters/bus/partitioned-event-bus.js';
import { RedisEventBus } from '../packages/server/src/adapters/bus/redis-event-bus.js';
import type { RedisTarget } from '../packages/server/src/adapters/redis/redis-connection.js';
import { startRedisCluster } from '../packages/server/test/helpers/redis-cluster.js';
import { Histogram, nowMs } from './histogram.js';

/**
 * `npx tsx --conditions=@infinitescribe/source bench/bus-throughput.ts` — the Redis bus alone,
 * without HTTP or streams: two bus instances (as two servers would hold them) each subscribed to
 * `topics` topics; instance A publishes as fast as 64 publishes in flight allow for a few seconds.
 * Reports publishes/s, the bus deliveries/s (each publish reaches both instances' subscribers) and
 * the publish → delivery p50/p99 on B, on the shared Redis at 127.0.0.1:6379 and on a 3-primary
 * Redis Cluster of its own (sharded pub/sub), each as one slot and as 3 partitions
 * (REDIS_BUS_PARTITIONS, docs/sharding-the-bus.md), with the Redis CPU each primary spent.
 * See docs/scaling.md.
 */

const SECONDS = 5;
const IN_FLIGHT = 64;
const TOPICS = 100;

interface Result {
  target: string;
  publishesPerSec: number;
  deliveriesPerSec: number;
  latency: { p50: number; p99: number };
  /** Redis CPU seconds per primary (user + sys) over the run, busiest first. */
  redisCpu: number[];
}

/** CPU seconds (user + sys) each Redis server has used so far. */
type CpuReader = () => Promise<number[]>;

async function cpuOf(client: Redis): Promise<number> {
  const info = await client.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1] ?? 0);
  return field('used_cpu_user') + field('used_cpu_sys');
}

async function measure(label: string, url: RedisTarget, partitions: number, cpu: CpuReader): Promise<Result> {
  const prefix = `busbench${randomBytes(4).toString('hex')}`;
  const options = { url, limits: { maxEvents: 1_000, maxAgeMs: 3_600_000 }, keyPrefix: prefix };
  const make = (): EventBus =>
    partitions > 1 ? new PartitionedEventBus({ ...options, partitions }) : new RedisEventBus(options);
  const [a, b] = [make(), make()];
  const floor = Date.now() * 1000;
  await a.start({ idFloor: floor, coveredFrom: floor });
  await b.start({ idFloor: floor, coveredFrom: floor });
  let delivered = 0;
  const latency = new Histogram();
  for (let topic = 0; topic < TOPICS; topic++) {
    await a.subscribe(`t${topic}`, () => delivered++);
    await b.subscribe(`t${topic}`, (event) => {
      delivered++;
      latency.record(nowMs() - Number((event.payload as { title: string }).title));
    });
  }
  const cpuBefore = await cpu();
  const started = nowMs();
  let published = 0;
  const worker = async () => {
    while (nowMs() - started < SECONDS * 1000) {
      await a.publish({
        topic: `t${published % TOPICS}`,
        type: 'notification',
        payload: { title: String(nowMs()), level: 'info' },
        ts: new Date().toISOString(),
        critical: false,
      });
      published++;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const elapsed = (nowMs() - started) / 1000;
  const until = nowMs() + 5_000;
  while (delivered < published * 2 && nowMs() < until) await new Promise((resolve) => setTimeout(resolve, 20));
  const cpuAfter = await cpu();
  await Promise.all([a.close(), b.close()]);
  const summary = latency.summary();
  return {
    target: label,
    publishesPerSec: published / elapsed,
    deliveriesPerSec: delivered / elapsed,
    latency: { p50: summary.p50, p99: summary.p99 },
    redisCpu: cpuAfter.map((seconds, index) => seconds - (cpuBefore[index] ?? 0)).sort((x, y) => y - x),
  };
}

async function deletePrefixKeys(): Promise<void> {
  const admin = new Redis('redis://127.0.0.1:6379');
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', '{busbench*', 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await admin.del(...keys);
  } while (cursor !== '0');
  admin.disconnect();
}

const results: Result[] = [];
const single = new Redis('redis://127.0.0.1:6379');
const singleCpu: CpuReader = async () => [await cpuOf(single)];
results.push(await measure('one Redis (127.0.0.1:6379), one slot', 'redis://127.0.0.1:6379', 1, singleCpu));
results.push(await measure('one Redis, 3 partitions', 'redis://127.0.0.1:6379', 3, singleCpu));
single.disconnect();
await deletePrefixKeys();
const cluster = await startRedisCluster(3);
try {
  const primaries = cluster.nodes.slice(0, 3);
  const clusterCpu: CpuReader = () =>
    Promise.all(primaries.map((address) => cluster.onNode(address, (client) => cpuOf(client))));
  const nodes = { clusterNodes: cluster.nodes };
  results.push(await measure('Redis Cluster, 3 primaries, one slot', nodes, 1, clusterCpu));
  results.push(await measure('Redis Cluster, 3 primaries, 3 partitions', nodes, 3, clusterCpu));
} finally {
  await cluster.stop();
}
console.log(
  `\n${new Date().toISOString()} · ${SECONDS} s, ${IN_FLIGHT} publishes in flight, ${TOPICS} topics, 2 bus instances\n`,
);
console.log(
  '| target | publishes/s | bus deliveries/s | delivery p50 / p99 ms | Redis CPU s per primary, busiest first |\n| --- | ---: | ---: | ---: | --- |',
);
for (const r of results) {
  console.log(
    `| ${r.target} | ${Math.round(r.publishesPerSec)} | ${Math.round(r.deliveriesPerSec)} | ` +
      `${r.latency.p50.toFixed(2)} / ${r.latency.p99.toFixed(2)} | ${r.redisCpu.map((s) => s.toFixed(2)).join(' / ')} |`,
  );
}
process.exit(0);
