import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
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
 * Redis Cluster of its own (sharded pub/sub). See docs/scaling.md.
 */

const SECONDS = 5;
const IN_FLIGHT = 64;
const TOPICS = 100;

interface Result {
  target: string;
  publishesPerSec: number;
  deliveriesPerSec: number;
  latency: { p50: number; p99: number };
}

async function measure(label: string, url: RedisTarget): Promise<Result> {
  const prefix = `busbench${randomBytes(4).toString('hex')}`;
  const make = () => new RedisEventBus({ url, limits: { maxEvents: 1_000, maxAgeMs: 3_600_000 }, keyPrefix: prefix });
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
  await Promise.all([a.close(), b.close()]);
  const summary = latency.summary();
  return {
    target: label,
    publishesPerSec: published / elapsed,
    deliveriesPerSec: delivered / elapsed,
    latency: { p50: summary.p50, p99: summary.p99 },
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
results.push(await measure('one Redis (127.0.0.1:6379)', 'redis://127.0.0.1:6379'));
await deletePrefixKeys();
const cluster = await startRedisCluster(3);
try {
  results.push(await measure('Redis Cluster, 3 primaries (sharded pub/sub)', { clusterNodes: cluster.nodes }));
} finally {
  await cluster.stop();
}
console.log(
  `\n${new Date().toISOString()} · ${SECONDS} s, ${IN_FLIGHT} publishes in flight, ${TOPICS} topics, 2 bus instances\n`,
);
console.log('| target | publishes/s | bus deliveries/s | delivery p50 / p99 ms |\n| --- | ---: | ---: | ---: |');
for (const r of results) {
  console.log(
    `| ${r.target} | ${Math.round(r.publishesPerSec)} | ${Math.round(r.deliveriesPerSec)} | ${r.latency.p50.toFixed(2)} / ${r.latency.p99.toFixed(2)} |`,
  );
}
process.exit(0);
