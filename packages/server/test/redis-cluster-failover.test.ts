import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { topicPartition } from '../src/adapters/bus/partitioned-event-bus.js';
import { partitionKeyPrefix } from '../src/adapters/bus/redis-bus-keys.js';
import { isRedisIssued } from '../src/core/event-id.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterToken, requireClusterServices, startCluster, type Cluster } from './helpers/cluster.js';
import { startChaosClient, type ChaosClient } from './helpers/chaos-client.js';
import { formatVerdict, groupByRule, judgeChaos, type ChaosHistory, type FaultRecord } from './helpers/chaos-judge.js';
import { publishRecorded, startPublisher, type Publisher, type ChaosPublish } from './helpers/chaos-publisher.js';
import { seededRandom } from './helpers/random.js';
import { requireRedisServer } from './helpers/redis-process.js';
import { startRedisCluster, type ClusterNodeInfo, type RedisClusterProcess } from './helpers/redis-cluster.js';
import { ofType, openStream, published } from './helpers/sse-reader.js';

/**
 * Issue 15: a Redis Cluster failover under load. Two real instances on a cluster of 3 primaries
 * with a replica each, PostgreSQL for the store; auto-reconnecting clients streaming on both
 * instances, publishers mixing critical and non-critical events on every topic through both. Then
 * the primary that owns the deployment's slot (every key of the bus) is killed with SIGKILL at a
 * moment its replica lags behind it (frozen while a filler write and some publishes pile up in
 * the primary's replication buffer), so the promoted replica lacks acknowledged writes: ids, log
 * entries, the counter. The chaos judge (helpers/chaos-judge.ts) then reads every client's history
 * and every publish's answer: every critical event answered 201 reaches every stream exactly once,
 * in order; no id names two events; every lost non-critical event is told (`stream.reset {gap}`,
 * a resume with `complete: false`), never a silent hole. A reader that left before the failover
 * and resumes on a topic only the lost writes touched gets the gap and the critical events from
 * the store. Every publish gets an answer of the HTTP API's shape (201/202, or 503
 * `bus_unavailable`, which says retry), and /readyz answers degraded meanwhile, then ok.
 *
 * The same again with the bus in three partitions (REDIS_BUS_PARTITIONS=3, docs/sharding-the-bus.md):
 * the primary killed is the one of the quiet topic's partition, while the other partitions' primaries
 * keep serving, so the merge barrier must let their events through and take the promoted one back.
 */

const available = (await requireClusterServices()) && requireRedisServer();

const USERS = ['f0', 'f1'];
const SHARED = 'doc:failover';
/**
 * Published on only while the replica lags (lost writes), by no instance serving alone: no rejoin
 * marks it, so only the bus noticing the lost writes can tell a reader from before them.
 */
const QUIET = 'doc:quiet';
const CLIENTS_PER_USER = 3;
const HEARTBEAT_MS = 2_000;
/** Every wait is bounded by this; a hang fails the test, naming what it waited for. */
const LIVENESS_MS = 30_000;
/** How long the replica stays frozen before its primary is killed (publishes pile up meanwhile). */
const LAG_MS = 300;
/** More than the kernel's socket buffers hold: what follows it stays in the primary's memory. */
const FILLER_BYTES = 32 * 1024 * 1024;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = LIVENESS_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${String(last)})` : ''}`);
    await sleep(100);
  }
}

async function readyStatus(url: string): Promise<string> {
  try {
    const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) });
    return ((await response.json()) as { status?: string }).status ?? `HTTP ${response.status}`;
  } catch (error) {
    return String(error);
  }
}

describe.skipIf(!available).each([
  { partitions: 1, title: 'the bus in one slot' },
  { partitions: 3, title: 'the bus in three partitions' },
])('a Redis Cluster failover under load (issue 15), $title', ({ partitions }) => {
  let redis: RedisClusterProcess | undefined;
  let cluster: Cluster | undefined;
  const clients: ChaosClient[] = [];
  const publishers: Publisher[] = [];
  let watching = true;
  let watcher: Promise<void> | undefined;

  beforeAll(async () => {
    redis = await startRedisCluster(3, { replicas: 1, nodeTimeoutMs: 1_500 });
    cluster = await startCluster({
      size: 2,
      env: {
        // REDIS_URL empty is unset: the instances get the cluster's nodes only.
        REDIS_URL: '',
        REDIS_CLUSTER_NODES: redis.nodes.join(','),
        HEARTBEAT_MS: String(HEARTBEAT_MS),
        RETRY_MS: '200',
        BREAKER_COOL_DOWN_MS: '500',
        BUS_PROBE_INTERVAL_MS: '250',
        BUS_PROBE_TIMEOUT_MS: '2000',
        REDIS_COMMAND_TIMEOUT_MS: '1000',
        REDIS_BUS_PARTITIONS: String(partitions),
      },
    });
  }, 120_000);

  afterAll(async () => {
    watching = false;
    for (const client of clients) client.close();
    await Promise.allSettled([...publishers.map((publisher) => publisher.stop()), watcher]);
    const stopped = await Promise.allSettled([cluster?.stop(), redis?.stop()]);
    for (const result of stopped) if (result.status === 'rejected') throw result.reason;
  }, 60_000);

  it('loses no acknowledged critical event, reuses no id and tells every lost event when the bus primary dies', async () => {
    if (!redis || !cluster) throw new Error('setup failed');
    const [nodes, running] = [redis, cluster];
    /** The hash tag of a topic's keys: the deployment's, or its partition's. */
    const tagOf = (topic: string) =>
      partitions > 1
        ? `{${partitionKeyPrefix(running.prefix, topicPartition(topic, partitions), partitions)}}`
        : `{${running.prefix}}`;
    const urls = running.instances.map((instance) => instance.url);
    const started = Date.now();
    const phases: string[] = [];
    const phase = (name: string) => phases.push(`+${((Date.now() - started) / 1000).toFixed(1)} s ${name}`);
    await until('both instances ready', async () =>
      (await Promise.all(urls.map(readyStatus))).every((status) => status === 'ok') ? true : undefined,
    );

    // /readyz of each instance, all along: it must say so while the bus has no primary.
    const readiness = urls.map(() => [] as { at: number; status: string }[]);
    watcher = (async () => {
      while (watching) {
        await Promise.all(
          urls.map(async (url, index) => readiness[index]?.push({ at: Date.now(), status: await readyStatus(url) })),
        );
        await sleep(100);
      }
    })();

    // Clients pinned to one instance each, so both instances serve streams through the failover.
    for (const [userIndex, user] of USERS.entries()) {
      const token = await clusterToken(user, undefined, [SHARED]);
      for (let copy = 0; copy < CLIENTS_PER_USER; copy++) {
        const pinned = urls[(userIndex * CLIENTS_PER_USER + copy) % urls.length] ?? '';
        clients.push(
          startChaosClient({
            name: `${user}.${copy}@${pinned}`,
            token,
            topics: [`user:${user}`, SHARED],
            instances: () => [pinned],
            random: seededRandom(100 + userIndex * CLIENTS_PER_USER + copy),
            idleTimeoutMs: 3 * HEARTBEAT_MS,
          }),
        );
      }
    }
    await Promise.all(clients.map((client) => client.waitReady(LIVENESS_MS)));
    phase(`${clients.length} clients streaming`);

    const topics = [...USERS.map((user) => `user:${user}`), SHARED];
    // A reader of the quiet topic that leaves before the failover, holding an id from before it.
    const quietToken = await clusterToken('quiet', undefined, [QUIET]);
    const quietPublisher = await clusterToken('publisher-quiet', 'events:publish');
    const quietPublishes: Awaited<ReturnType<typeof publishRecorded>>[] = [];
    const publishQuiet = async (event: ChaosPublish) => {
      const marker = `quiet-${quietPublishes.length}`;
      const url = urls[quietPublishes.length % urls.length] ?? '';
      const record = await publishRecorded(url, quietPublisher, marker, event);
      quietPublishes.push(record);
      return record;
    };
    const leaving = await openStream(urls[0] ?? '', { token: quietToken });
    await leaving.waitFor((events) => ofType(events, 'connection.established').length === 1, LIVENESS_MS);
    const lastSeen = await publishQuiet({ topic: QUIET, critical: true });
    await leaving.waitFor((events) => published(events).some((event) => event.id === lastSeen.id), LIVENESS_MS);
    leaving.close();
    for (let index = 0; index < 2; index++) {
      const random = seededRandom(500 + index);
      publishers.push(
        startPublisher({
          name: `p${index}`,
          token: await clusterToken(`publisher-${index}`, 'events:publish'),
          instances: () => urls,
          next: () => ({ topic: topics[Math.floor(random() * topics.length)] ?? SHARED, critical: random() < 0.3 }),
          pauseMs: 10,
        }),
      );
    }
    await sleep(1_500);

    // The primary that owns every key of the bus (of the quiet topic's partition), and its replica.
    const slot = Number(
      await nodes.onNode(nodes.nodes[0] ?? '', (client) => client.cluster('KEYSLOT', `${tagOf(QUIET)}:seq`)),
    );
    const primary = await nodes.masterOf(slot);
    const replica = (await nodes.topology()).find((node) => node.masterId === primary.id);
    if (!replica) throw new Error(`no replica of ${primary.address}`);
    const fault: FaultRecord = {
      name: `SIGKILL of the bus primary ${primary.address}`,
      startedAt: Date.now(),
      endedAt: 0,
    };
    phase(`slot ${slot} on ${primary.address}, replica ${replica.address}`);

    // The replica falls behind: frozen, then a write bigger than the socket buffers, then the
    // publishes of LAG_MS wait in the primary's replication buffer, which dies with it.
    nodes.freeze(replica.address, true);
    let killedAt = Infinity;
    try {
      await nodes.onNode(primary.address, (client) =>
        client.set(`${tagOf(QUIET)}:failover-filler`, Buffer.alloc(FILLER_BYTES, 'x')),
      );
      const lagEnds = Date.now() + LAG_MS;
      for (let index = 0; index < 4; index++) await publishQuiet({ topic: QUIET, critical: index % 2 === 0 });
      await sleep(lagEnds - Date.now());
      await nodes.kill(primary.address, 'SIGKILL');
      killedAt = Date.now();
      phase(`killed ${primary.address}`);
    } finally {
      nodes.freeze(replica.address, false);
    }
    const promoted = await until('the replica promoted', async (): Promise<ClusterNodeInfo | undefined> => {
      const master = await nodes.masterOf(slot).catch(() => undefined);
      return master?.address === replica.address ? master : undefined;
    });
    phase(`${promoted.address} promoted`);
    await until('both instances ready again', async () =>
      (await Promise.all(urls.map(readyStatus))).every((status) => status === 'ok') ? true : undefined,
    );
    fault.endedAt = Date.now();
    phase('both instances ready');
    await sleep(1_500);
    await Promise.all(publishers.map((publisher) => publisher.stop()));
    phase('publishers stopped');
    watching = false;
    await watcher;

    // Acknowledged writes the promoted replica never got: the failover did lose some.
    const publishes = [...publishers.flatMap((publisher) => publisher.records), ...quietPublishes];
    // The topics whose keys lived on the killed primary (all of them, with one slot).
    const onKilled = [...topics, QUIET].filter((topic) => tagOf(topic) === tagOf(QUIET));
    const logged = new Set<string>();
    await nodes.onNode(promoted.address, async (client) => {
      for (const topic of onKilled) {
        for (const [entryId] of await client.xrange(`${tagOf(topic)}:log:${topic}`, '-', '+')) {
          logged.add(entryId.replace(/-0$/, ''));
        }
      }
    });
    // Answered before the kill: by the old primary, never by an instance on its own.
    const lost = publishes.filter(
      (publish) =>
        publish.id !== undefined &&
        publish.answeredAt < killedAt &&
        onKilled.includes(publish.topic) &&
        !logged.has(publish.id),
    );
    phase(
      `${lost.length} acknowledged events (${lost.filter((publish) => publish.critical).length} critical) not in the promoted replica's log`,
    );

    // The quiet reader comes back: its topic lost what the replica never got, and says so.
    const back = await openStream(urls[1] ?? '', { token: quietToken, lastEventId: lastSeen.id ?? '' });
    await back.waitFor((events) => ofType(events, 'stream.resumed').length === 1, LIVENESS_MS);
    back.close();
    const quietCritical = quietPublishes.filter((publish) => publish.status === 201 && publish !== lastSeen);

    const finals = await Promise.allSettled(clients.map((client) => client.finalResume(LIVENESS_MS)));
    phase('final resume');
    const history: ChaosHistory = {
      publishes,
      clients: clients.map((client) => client.history),
      faults: [fault],
    };
    const verdict = judgeChaos(history, { livenessMs: LIVENESS_MS });
    let report = formatVerdict(verdict);
    if (verdict.violations.length > 0 || process.env.FAILOVER_HISTORY) {
      // Everything, for a closer look than the examples: every answer, every frame read and the
      // instances' logs (FAILOVER_HISTORY=1 writes it for a passing run too).
      const file = join(tmpdir(), `failover-history-${started}.json`);
      writeFileSync(
        file,
        JSON.stringify({
          ...history,
          phases,
          killedAt,
          lost: lost.map((publish) => publish.marker),
          logs: running.instances.map((instance) => instance.output()),
        }),
      );
      report += `\nfull history: ${file}`;
    }
    const degraded = readiness.map((states) =>
      states.filter((state) => state.at >= fault.startedAt && state.status !== 'ok'),
    );
    console.info(
      `failover run, ${((Date.now() - started) / 1000).toFixed(1)} s:\n${phases.join('\n')}\n` +
        `readyz not ok after the kill: ${degraded.map((states) => [...new Set(states.map((state) => state.status))].join('/')).join(' | ')}\n${report}`,
    );

    expect(finals.filter((result) => result.status === 'rejected')).toEqual([]);
    expect(lost.length, 'the promoted replica lacks acknowledged writes').toBeGreaterThan(0);
    // Acknowledged on the quiet topic before the kill, then gone from the log: the critical ones
    // come back from the store, in order, once each; the loss is told, never a silent hole.
    expect(quietPublishes.map((publish) => publish.status)).toEqual([201, 201, 202, 201, 202]);
    expect(quietCritical.every((publish) => lost.includes(publish))).toBe(true);
    expect(ofType(back.events, 'stream.reset')).toMatchObject([{ reason: 'gap' }]);
    expect(ofType(back.events, 'stream.resumed')).toMatchObject([{ complete: false }]);
    expect(published(back.events).map((event) => event.id)).toEqual(quietCritical.map((publish) => publish.id));
    const broken = groupByRule(verdict.violations).map(([rule, violations]) => `${rule} ×${violations.length}`);
    expect(broken, report).toEqual([]);
    // Every publish was answered in the API's shape: accepted, or 503 with a code (retry later).
    const answers = new Set(
      publishes.map((publish) =>
        publish.status === undefined ? `no answer: ${publish.error}` : `${publish.status} ${publish.code ?? ''}`.trim(),
      ),
    );
    for (const answer of answers)
      expect(['201', '202', '503 bus_unavailable', '503 store_unavailable']).toContain(answer);
    // Once both are ready, the promoted replica takes every publish (its scripts loaded again, the
    // slot's new owner found): ids from its counter, none issued by an instance alone.
    const afterwards = publishes.filter((publish) => publish.sentAt > fault.endedAt);
    expect(afterwards.length).toBeGreaterThan(0);
    for (const publish of afterwards) {
      expect(publish.status === 201 || publish.status === 202, `${publish.marker}: ${publish.status}`).toBe(true);
      expect(isRedisIssued(Number(publish.id), partitions)).toBe(true);
    }
    // Each instance said it was not whole while the bus had no primary (and always answered), and
    // is whole again.
    for (const states of degraded) {
      expect(states.map((state) => state.status)).toContain('degraded');
      for (const state of states) expect(['degraded', 'unavailable']).toContain(state.status);
    }
    for (const url of urls) expect(await readyStatus(url)).toBe('ok');
  }, 120_000);
});
