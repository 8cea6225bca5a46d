import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startRedisCluster } from '../packages/server/test/helpers/redis-cluster.js';
import { Histogram, type LatencySummary, nowMs } from './histogram.js';
import { LoadPool } from './load-pool.js';
import {
  combineSamples,
  type DeliveryResult,
  type DeliverySample,
  fmtInt,
  fmtMs,
  fmtPct,
  log,
  quiet,
  stepOk,
  THROUGHPUT_P99_LIMIT_MS,
  toResult,
  waitForQuiet,
} from './phases.js';
import {
  type Cleanups,
  OUR_ENTRY,
  readCpuMs,
  readMachineBusyMs,
  ROOT,
  runCleanups,
  type ServerProcess,
  spawnTracked,
  startBenchServer,
  startOurServer,
  stopChild,
  track,
} from './processes.js';
import { Publisher, publisherToken } from './publisher.js';
import { verdictTable, type VerdictRow } from './report.js';

/**
 * `npm run bench -- --scenario=cluster [--redis=single|cluster|both] [--quick]` — two instances of
 * our server sharing a Redis bus, 2,500 streams on each, every event published on instance A, on
 * one Redis (127.0.0.1:6379) and/or on a 3-primary Redis Cluster the run starts (sharded pub/sub).
 * Measures delivery latency on A (local fan-out) and on B (through Redis), publish-to-ack, the
 * deliveries/s ↔ p99 curve, and the Redis commands each publish costs (per node on the Cluster),
 * then prints one Redis and the Cluster side by side. See bench/README.md.
 *
 * With both, the two deployments run at the same time and their windows alternate (base window in
 * rounds, curve step by step), as the core scenario alternates its servers: on a shared machine
 * both then see the same background load, and the idle deployment costs next to nothing.
 */

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const REDIS_URL = 'redis://127.0.0.1:6379';
const SINGLE_NODE: RedisNode = { host: '127.0.0.1', port: 6379 };
const CLUSTER_PRIMARIES = 3;
const STREAM_PATH = '/api/sse/stream?topics=broadcast';
const PUBLISH_PATH = '/api/events';
const OPEN_RATE = 1_000;
const BASE_RATE = 5;
const TARGET_DELIVERY_P99_MS = 50;
const MINIMAL_ENTRY = 'bench/minimal-server.ts';
const MINIMAL_STREAM_PATH = '/stream?topics=broadcast';
const MINIMAL_PUBLISH_PATH = '/publish';
const TARGET_ACK_P99_MS = 10;

/** Which Redis the two instances share: the machine's one Redis, or a Redis Cluster of the run's own. */
export type RedisMode = 'single' | 'cluster';

export interface ClusterScenarioOptions {
  modes: RedisMode[];
  quick: boolean;
}

interface ClusterPlan {
  name: 'full' | 'quick';
  streamsPerInstance: number;
  /** The base window (5 ev/s) of each deployment, measured in `baseRounds` alternating rounds. */
  baseSeconds: number;
  baseRounds: number;
  steps: number[];
  stepSeconds: number;
  floorSeconds: number;
  /** Sequential publishes of the Redis-cost burst (N). */
  redisBurst: number;
}

const FULL: ClusterPlan = {
  name: 'full',
  streamsPerInstance: 2_500,
  // Every publish of the base window is a publish-to-ack sample, and a p99 of fewer than a few
  // hundred samples is just the maximum: 500 samples at 5 ev/s = 100 s.
  baseSeconds: 100,
  baseRounds: 5,
  steps: [5, 10, 15, 20, 30, 40, 60, 80, 100, 130, 160, 200],
  stepSeconds: 4,
  floorSeconds: 30,
  redisBurst: 100,
};

/** For iterating on the bench itself: fewer streams, short windows; the p99s are near-maxima. */
const QUICK: ClusterPlan = {
  name: 'quick',
  streamsPerInstance: 1_000,
  baseSeconds: 10,
  baseRounds: 2,
  steps: [10, 20, 40, 80, 160],
  stepSeconds: 2,
  floorSeconds: 10,
  redisBurst: 50,
};

const MODE_TITLE: Record<RedisMode, string> = {
  single: 'one Redis',
  cluster: `Redis Cluster, ${CLUSTER_PRIMARIES} primaries`,
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const execFileAsync = promisify(execFile);

interface RedisNode {
  host: string;
  port: number;
}

const nodeName = (node: RedisNode) => `:${node.port}`;

async function redisCli(node: RedisNode, ...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('redis-cli', ['-h', node.host, '-p', String(node.port), ...args], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

/** `cmdstat_<name>` → calls, from `INFO commandstats` (global to the Redis server). */
async function commandStats(node: RedisNode): Promise<Map<string, number>> {
  const stats = new Map<string, number>();
  for (const match of (await redisCli(node, 'INFO', 'commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    stats.set(match[1] ?? '', Number(match[2]));
  }
  return stats;
}

interface RedisClient {
  addr: string;
  name: string;
}

async function clientList(node: RedisNode): Promise<RedisClient[]> {
  return (await redisCli(node, 'CLIENT', 'LIST'))
    .split('\n')
    .filter((line) => line.startsWith('id='))
    .map((line) => ({
      addr: /\baddr=(\S+)/.exec(line)?.[1] ?? '',
      name: /\bname=(\S*)/.exec(line)?.[1] ?? '',
    }));
}

/** Deletes every key containing the run's unique prefix (SCAN MATCH + DEL, never FLUSH). */
async function deleteKeys(node: RedisNode, prefix: string): Promise<number> {
  const keys = (await redisCli(node, '--scan', '--pattern', `*${prefix}*`)).split('\n').filter((key) => key !== '');
  for (let i = 0; i < keys.length; i += 500) await redisCli(node, 'DEL', ...keys.slice(i, i + 500));
  return keys.length;
}

/**
 * The primary that owns the slot of the deployment's hash tag `{prefix}`: every bus key and
 * channel of the deployment lives there (redis-bus-keys.ts). From CLUSTER KEYSLOT and the slot
 * ranges of CLUSTER NODES.
 */
async function slotOwner(nodes: readonly RedisNode[], prefix: string): Promise<{ slot: number; owner: RedisNode }> {
  const [first] = nodes;
  if (!first) throw new Error('no cluster node');
  const slot = Number((await redisCli(first, 'CLUSTER', 'KEYSLOT', `{${prefix}}`)).trim());
  for (const line of (await redisCli(first, 'CLUSTER', 'NODES')).split('\n')) {
    const fields = line.trim().split(/\s+/);
    const port = Number(/:(\d+)@/.exec(fields[1] ?? '')?.[1]);
    const owns = fields.slice(8).some((range) => {
      const [from, to] = range.split('-').map(Number);
      return from !== undefined && slot >= from && slot <= (to ?? from);
    });
    const owner = nodes.find((node) => node.port === port);
    if (owns && owner) return { slot, owner };
  }
  throw new Error(`no primary owns slot ${slot}`);
}

/**
 * `127.0.0.1:<port>` of every TCP socket `pid` holds (its fds' socket inodes, looked up in
 * /proc/net/tcp): what Redis's CLIENT LIST shows as `addr` for that process's connections. This
 * tells our instances' connections apart on every node, whenever they were opened (ioredis opens a
 * Cluster's sharded subscriber connections lazily, per primary).
 */
function tcpAddrsOf(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match?.[1]) inodes.add(match[1]);
    } catch {
      // The fd closed between readdir and readlink.
    }
  }
  const addrs = new Set<string>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (!inodes.has(fields[9] ?? '')) continue;
    const [ipHex = '', portHex = ''] = (fields[1] ?? '').split(':');
    // Little-endian IPv4 in hex: 0100007F = 127.0.0.1.
    const ip = [3, 2, 1, 0].map((i) => parseInt(ipHex.slice(i * 2, i * 2 + 2), 16)).join('.');
    addrs.add(`${ip}:${parseInt(portHex, 16)}`);
  }
  return addrs;
}

interface Instance {
  label: string;
  server: ServerProcess;
  pool: LoadPool;
}

/** Two instances on one Redis target, their streams, and a publisher on A. */
interface Deployment {
  mode: RedisMode;
  title: string;
  nodes: RedisNode[];
  /** Cluster: the primary that owns the deployment's hash slot. */
  bus?: { slot: number; owner: RedisNode };
  instances: Instance[];
  publisher: Publisher;
}

/** One delivery window on both instances at once: raw counters, to add rounds up. */
interface WindowSample {
  rate: number;
  perInstance: DeliverySample[];
  ack: Histogram;
}

/** Windows (or rounds of one) summed: per instance, both instances together, publish-to-ack. */
interface ClusterWindow {
  rate: number;
  /** 2 when a curve step was measured again after a failed first attempt. */
  attempt?: number;
  perInstance: DeliveryResult[];
  all: DeliveryResult;
  ack: LatencySummary;
}

type Counts = Record<string, number>;

interface RedisCost {
  publishes: number;
  burstMs: number;
  /** INFO commandstats Δ(evalsha + eval) / N per node, during the burst and during an idle window as long. */
  evalPerPublish: Counts;
  evalIdlePerPublish: Counts;
  /** INFO commandstats Δ(all calls but INFO) / N, summed over the nodes. */
  totalPerPublish: number;
  totalIdlePerPublish: number;
  /** `<instance>/<client name> <command>` → top-level commands seen by MONITOR, summed over the nodes. */
  burst: Counts;
  idle: Counts;
  /** Burst count / N per key (the idle window is shown beside it: lease renewals and probes are periodic). */
  perConnection: Counts;
  /** Node → commands A's bus connection sent it during the burst / N. */
  busCommandsByNode: Counts;
  monitorOk: boolean;
}

interface ModeResult {
  deployment: Deployment;
  base: ClusterWindow;
  steps: ClusterWindow[];
  redis: RedisCost;
}

/** Waits until `expected` frames arrived on both pools, nothing came for 1.5 s, or `timeoutMs`. */
async function drainAll(instances: readonly Instance[], expected: number, timeoutMs: number): Promise<void> {
  const until = nowMs() + timeoutMs;
  let last = -1;
  let lastProgress = nowMs();
  while (nowMs() < until && nowMs() - lastProgress < 1_500) {
    const stats = await Promise.all(instances.map((instance) => instance.pool.stats()));
    const received = stats.reduce((sum, s) => sum + s.received, 0);
    if (received >= expected) return;
    if (received !== last) [last, lastProgress] = [received, nowMs()];
    await sleep(100);
  }
}

/**
 * Publishes on A at `rate` for `seconds` — each request timed (publish-to-ack) — and reads what
 * both instances' streams received. One request every 1/rate s (≤ 64 in flight), each timed alone.
 */
async function deliveryWindow(
  label: string,
  instances: readonly Instance[],
  publish: () => Promise<number>,
  load: { rate: number; seconds: number },
): Promise<WindowSample> {
  const { rate, seconds } = load;
  await waitForQuiet(`${label} ${rate} ev/s`);
  await Promise.all(instances.map((instance) => instance.pool.reset()));
  const streams = await Promise.all(instances.map(async (instance) => (await instance.pool.stats()).open));
  const cpuBefore = instances.map((instance) => readCpuMs(instance.server.pid));
  const machineBefore = readMachineBusyMs();
  const selfBefore = process.cpuUsage();
  const startedAt = nowMs();
  const ack = new Histogram();
  const total = Math.round(rate * seconds);
  const publishFailures: Record<string, number> = {};
  let accepted = 0;
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = startedAt + (i * 1000) / rate;
    if (due > nowMs()) await sleep(due - nowMs());
    const sentAt = nowMs();
    pending.push(
      publish().then((status) => {
        ack.record(nowMs() - sentAt);
        if (status >= 200 && status < 300) accepted++;
        else publishFailures[String(status)] = (publishFailures[String(status)] ?? 0) + 1;
      }),
    );
    while (pending.length - ack.count >= 64 && nowMs() < startedAt + seconds * 1000 + 10_000) await sleep(1);
  }
  await Promise.all(pending);
  const publishedAt = nowMs();
  const windowMs = publishedAt - startedAt;
  const cpuAfter = instances.map((instance) => readCpuMs(instance.server.pid));
  const machineMs = readMachineBusyMs() - machineBefore;
  const selfAfter = process.cpuUsage(selfBefore);
  await drainAll(instances, accepted * streams.reduce((a, b) => a + b, 0), 5_000);
  const stats = await Promise.all(instances.map((instance) => instance.pool.stats()));
  const perInstance: DeliverySample[] = instances.map((instance, i) => {
    const s = stats[i];
    if (!s) throw new Error('missing pool stats');
    return {
      rate,
      accepted,
      publishFailures,
      publishMs: windowMs,
      activeMs: Math.max(publishedAt, s.lastReceivedAt) - startedAt,
      streams: streams[i] ?? 0,
      expected: accepted * (streams[i] ?? 0),
      received: s.received,
      latency: s.latency,
      disconnects: s.disconnects,
      orderErrors: s.orderErrors,
      serverCpuMs: (cpuAfter[i] ?? 0) - (cpuBefore[i] ?? 0),
      serverCpuTotalMs: readCpuMs(instance.server.pid) - (cpuBefore[i] ?? 0),
      clientCpuMs: s.cpuMs + (i === 0 ? (selfAfter.user + selfAfter.system) / 1000 : 0),
      machineCpuMs: machineMs,
      windowMs,
    };
  });
  const sample = { rate, perInstance, ack };
  const window = summarize([sample]);
  log(
    `${label} ${rate} ev/s → ${fmtInt(window.all.deliveriesPerSec)} deliveries/s, p99 ${fmtMs(window.all.latency.p99)} ms ` +
      `(A ${fmtMs(window.perInstance[0]?.latency.p99 ?? NaN)}, B ${fmtMs(window.perInstance[1]?.latency.p99 ?? NaN)}), ` +
      `delivered ${fmtPct(window.all.ratio)}, ack p99 ${fmtMs(window.ack.p99)} ms`,
  );
  return sample;
}

/**
 * Rounds of one load added up: per instance over the rounds, then both instances together (the
 * same publishes and the same machine window, so those two are not added).
 */
function summarize(rounds: readonly WindowSample[]): ClusterWindow {
  const [first] = rounds;
  if (!first) throw new Error('no rounds');
  const perInstance = first.perInstance.map((_, i) =>
    combineSamples(rounds.map((round) => round.perInstance[i]).filter((s) => s !== undefined)),
  );
  const [a, ...others] = perInstance;
  if (!a || others.length === 0) throw new Error('expected two instances');
  const latency = new Histogram();
  for (const sample of perInstance) latency.merge(sample.latency.toData());
  const sum = (pick: (sample: DeliverySample) => number) => perInstance.reduce((total, s) => total + pick(s), 0);
  const combined: DeliverySample = {
    ...a,
    activeMs: Math.max(...perInstance.map((s) => s.activeMs)),
    streams: sum((s) => s.streams),
    expected: sum((s) => s.expected),
    received: sum((s) => s.received),
    latency,
    disconnects: sum((s) => s.disconnects),
    orderErrors: sum((s) => s.orderErrors),
    serverCpuMs: sum((s) => s.serverCpuMs),
    serverCpuTotalMs: sum((s) => s.serverCpuTotalMs),
    clientCpuMs: sum((s) => s.clientCpuMs),
  };
  const ack = new Histogram();
  for (const round of rounds) ack.merge(round.ack.toData());
  return {
    rate: first.rate,
    perInstance: perInstance.map((sample) => toResult(sample)),
    all: toResult(combined),
    ack: ack.summary(),
  };
}

/** Each deployment's base window, in rounds that alternate between them. */
async function measureBase(deployments: readonly Deployment[], plan: ClusterPlan): Promise<ClusterWindow[]> {
  const rounds = deployments.map((): WindowSample[] => []);
  for (let round = 0; round < plan.baseRounds; round++) {
    for (const [i, deployment] of deployments.entries()) {
      rounds[i]?.push(
        await deliveryWindow(
          `${deployment.mode} base ${round + 1}/${plan.baseRounds}:`,
          deployment.instances,
          publishOn(deployment),
          {
            rate: BASE_RATE,
            seconds: plan.baseSeconds / plan.baseRounds,
          },
        ),
      );
    }
  }
  return rounds.map((samples) => summarize(samples));
}

/**
 * The curve, step by step, each step on each deployment whose ramp has not ended. The machine may
 * be shared: as in the core scenario, a failed step without dropped streams is measured once more
 * and the better attempt kept, so that one transient stall does not end a ramp.
 */
async function measureCurve(deployments: readonly Deployment[], plan: ClusterPlan): Promise<ClusterWindow[][]> {
  const curves = deployments.map((): ClusterWindow[] => []);
  const ramping = new Set(deployments);
  const measure = async (deployment: Deployment, rate: number, attempt: number) => {
    const label = `${deployment.mode}${attempt > 1 ? ' (2nd try)' : ''}:`;
    const sample = await deliveryWindow(label, deployment.instances, publishOn(deployment), {
      rate,
      seconds: plan.stepSeconds,
    });
    return { ...summarize([sample]), attempt };
  };
  for (const rate of plan.steps) {
    for (const [i, deployment] of deployments.entries()) {
      if (!ramping.has(deployment)) continue;
      let step = await measure(deployment, rate, 1);
      if (!stepOk(step.all) && step.all.disconnects === 0) {
        const again = await measure(deployment, rate, 2);
        if (stepOk(again.all) || again.all.latency.p99 < step.all.latency.p99) step = again;
      }
      curves[i]?.push(step);
      if (!stepOk(step.all)) ramping.delete(deployment);
    }
    if (ramping.size === 0) break;
  }
  return curves;
}

/**
 * Promise.all that waits for every start to settle before it throws: a start that fails must not
 * leave another one registering its cleanups after the caller ran them.
 */
async function settleAll<T>(starts: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(starts);
  return settled.map((result) => {
    if (result.status === 'rejected') throw result.reason;
    return result.value;
  });
}

const publishOn = (deployment: Deployment) => () => deployment.publisher.publish();

/**
 * Redis commands per publish. INFO commandstats counts per server (on one Redis other clients and
 * the scripts' inner calls count too), so the commands are also counted per connection with
 * MONITOR on every node, keyed by `<instance>/<client name>` (our instances' connections, found by
 * their addresses): during N sequential publishes on A, then during an idle window as long; per
 * publish = burst / N, the idle window showing what is periodic (lease renewals every ~30 s, the
 * subscriber probe, a Cluster client's slot refreshes).
 */
async function measureRedisCost(deployment: Deployment, burstSize: number): Promise<RedisCost> {
  const { nodes, instances, publisher } = deployment;
  const owners = new Map<string, string>();
  const addrs = instances.map((instance) => ({ label: instance.label, addrs: tcpAddrsOf(instance.server.pid) }));
  for (const node of nodes) {
    for (const client of await clientList(node)) {
      const instance = addrs.find((candidate) => candidate.addrs.has(client.addr));
      if (instance) owners.set(`${nodeName(node)} ${client.addr}`, `${instance.label}/${client.name}`);
    }
  }
  log(`${deployment.mode}: our Redis connections ${JSON.stringify(countValues(owners))}`);
  let counting: Record<string, Counts> | undefined;
  const monitors = nodes.map((node) => {
    const monitor = spawnTracked('redis-cli', ['-h', node.host, '-p', String(node.port), 'MONITOR'], ROOT);
    let buffered = '';
    monitor.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      if (!counting) return;
      const counts = (counting[nodeName(node)] ??= {});
      for (const line of lines) {
        const match = /^\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]+)"/.exec(line);
        const owner = match?.[1] === undefined ? undefined : owners.get(`${nodeName(node)} ${match[1]}`);
        if (!owner || !match?.[2]) continue;
        const key = `${owner} ${match[2].toLowerCase()}`;
        counts[key] = (counts[key] ?? 0) + 1;
      }
    });
    return monitor;
  });
  const allStats = async () => Promise.all(nodes.map((node) => commandStats(node)));
  try {
    await sleep(500);
    const monitorOk = monitors.every((monitor) => monitor.exitCode === null);
    const burst: Record<string, Counts> = {};
    counting = burst;
    const before = await allStats();
    const burstStart = nowMs();
    let accepted = 0;
    for (let i = 0; i < burstSize; i++) {
      const status = await publisher.publish();
      if (status >= 200 && status < 300) accepted++;
    }
    const after = await allStats();
    const burstMs = nowMs() - burstStart;
    await sleep(300);
    const idle: Record<string, Counts> = {};
    counting = idle;
    const idleBefore = await allStats();
    await sleep(burstMs);
    const idleAfter = await allStats();
    await sleep(300);
    counting = undefined;
    const n = Math.max(1, accepted);
    const delta = (a: Map<string, number>, b: Map<string, number>, name: string) =>
      (b.get(name) ?? 0) - (a.get(name) ?? 0);
    const evalsByNode = (a: Map<string, number>[], b: Map<string, number>[]): Counts =>
      Object.fromEntries(
        nodes.map((node, i) => {
          const [x = new Map<string, number>(), y = new Map<string, number>()] = [a[i], b[i]];
          return [nodeName(node), (delta(x, y, 'evalsha') + delta(x, y, 'eval')) / n];
        }),
      );
    const totalOf = (a: Map<string, number>[], b: Map<string, number>[]) =>
      b.reduce(
        (sum, stats, i) =>
          sum +
          [...stats.keys()]
            .filter((name) => name !== 'info')
            .reduce((nodeSum, name) => nodeSum + delta(a[i] ?? new Map<string, number>(), stats, name), 0),
        0,
      ) / n;
    const burstAll = sumNodes(burst);
    const perConnection: Counts = {};
    for (const [key, count] of Object.entries(burstAll)) perConnection[key] = count / n;
    const busCommandsByNode: Counts = {};
    for (const node of nodes) {
      busCommandsByNode[nodeName(node)] = sumCounts(pick(burst[nodeName(node)] ?? {}, 'A/infinitescribe:cmd')) / n;
    }
    const cost: RedisCost = {
      publishes: accepted,
      burstMs,
      evalPerPublish: evalsByNode(before, after),
      evalIdlePerPublish: evalsByNode(idleBefore, idleAfter),
      totalPerPublish: totalOf(before, after),
      totalIdlePerPublish: totalOf(idleBefore, idleAfter),
      burst: burstAll,
      idle: sumNodes(idle),
      perConnection,
      busCommandsByNode,
      monitorOk,
    };
    log(
      `${deployment.mode} redis: ${accepted} publishes in ${burstMs.toFixed(0)} ms; Δ(evalsha+eval)/N per node ` +
        `${fmtCounts(cost.evalPerPublish)} (idle window ${fmtCounts(cost.evalIdlePerPublish)}), Δall/N ` +
        `${cost.totalPerPublish.toFixed(2)} (idle ${cost.totalIdlePerPublish.toFixed(2)}); A's bus connection per node ` +
        `${fmtCounts(busCommandsByNode)}; burst ${JSON.stringify(burst)}; idle ${JSON.stringify(idle)}`,
    );
    return cost;
  } finally {
    await Promise.all(monitors.map((monitor) => stopChild(monitor, 2_000)));
  }
}

function sumNodes(byNode: Record<string, Counts>): Counts {
  const total: Counts = {};
  for (const counts of Object.values(byNode)) {
    for (const [key, count] of Object.entries(counts)) total[key] = (total[key] ?? 0) + count;
  }
  return total;
}

function countValues(map: Map<string, string>): Counts {
  const counts: Counts = {};
  for (const value of map.values()) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

async function startInstance(
  label: string,
  options: { secret: string; env: Record<string, string>; plan: ClusterPlan },
  cleanups: Cleanups,
): Promise<Instance> {
  const server = await startOurServer({ secret: options.secret, env: options.env, cleanups });
  log(`instance ${label}: pid ${server.pid} at ${server.baseUrl} (${options.env['INSTANCE_ID'] ?? ''})`);
  const pool = await LoadPool.start({
    processes: 1,
    baseUrl: server.baseUrl,
    streamPath: STREAM_PATH,
    secret: options.secret,
  });
  cleanups.push(() => pool.stop());
  return { label, server, pool };
}

/**
 * Two instances on `mode`'s Redis, their streams open, a publisher on A. The Cluster is the run's
 * own (packages/server/test/helpers/redis-cluster.ts: free ports, stopped by PID in `cleanups`).
 */
async function startDeployment(
  mode: RedisMode,
  options: { secret: string; prefix: string; plan: ClusterPlan },
  cleanups: Cleanups,
): Promise<Deployment> {
  let nodes: RedisNode[];
  let env: Record<string, string>;
  let bus: Deployment['bus'];
  if (mode === 'single') {
    nodes = [SINGLE_NODE];
    env = { REDIS_URL };
    cleanups.push(() =>
      deleteKeys(SINGLE_NODE, options.prefix).then((n) => log(`deleted ${n} Redis keys *${options.prefix}*`)),
    );
  } else {
    const cluster = await startRedisCluster(CLUSTER_PRIMARIES);
    // Stopped by PID with the bench's other children if the run is interrupted.
    for (const child of cluster.processes) track(child);
    cleanups.push(() => cluster.stop().then(() => log(`stopped the Redis Cluster (${cluster.nodes.join(', ')})`)));
    nodes = cluster.nodes.map((node) => {
      const [host = '127.0.0.1', port = ''] = node.split(':');
      return { host, port: Number(port) };
    });
    env = { REDIS_CLUSTER_NODES: cluster.nodes.join(',') };
    bus = await slotOwner(nodes, options.prefix);
    log(
      `Redis Cluster on ${cluster.nodes.join(', ')}; slot ${bus.slot} of {${options.prefix}} is on ${nodeName(bus.owner)}`,
    );
  }
  log(`starting ${mode} instances A and B: ${OUR_ENTRY} (${Object.entries(env).map(([k, v]) => `${k}=${v}`)[0]})`);
  // Together: their Redis connections are told apart by address (tcpAddrsOf), not by start order.
  const instances = await settleAll(
    ['A', 'B'].map((label) =>
      startInstance(
        label,
        {
          secret: options.secret,
          env: { ...env, REDIS_KEY_PREFIX: options.prefix, INSTANCE_ID: `${options.prefix}-${mode}-${label}` },
          plan: options.plan,
        },
        cleanups,
      ),
    ),
  );
  const [a] = instances;
  if (!a) throw new Error('no instance A');
  const publisher = new Publisher(a.server.baseUrl, {
    path: PUBLISH_PATH,
    token: await publisherToken(options.secret),
  });
  cleanups.push(async () => publisher.close());
  for (const instance of instances) {
    const opened = await instance.pool.open(options.plan.streamsPerInstance, OPEN_RATE, 60_000);
    log(
      `${mode} instance ${instance.label}: ${opened.established} streams open, ${opened.failed} failed ${JSON.stringify(opened.failures)}`,
    );
  }
  return { mode, title: MODE_TITLE[mode], nodes, ...(bus ? { bus } : {}), instances, publisher };
}

export async function runCluster(options: ClusterScenarioOptions): Promise<void> {
  const startedAt = nowMs();
  const plan = options.quick ? QUICK : FULL;
  const prefix = `bench${randomBytes(4).toString('hex')}`;
  const secret = randomBytes(32).toString('hex');
  log(
    `scenario cluster (${plan.name}): 2 instances on ${options.modes.map((mode) => MODE_TITLE[mode]).join(' and on ')}, ` +
      `${plan.streamsPerInstance} streams each; node ${process.version}`,
  );
  const cleanups: Cleanups = [];
  const deployments: Deployment[] = [];
  let results: ModeResult[];
  let floor: ClusterWindow;
  try {
    // Together: start-up is not measured, and starting both at once saves ~20 s of a run.
    deployments.push(
      ...(await settleAll(options.modes.map((mode) => startDeployment(mode, { secret, prefix, plan }, cleanups)))),
    );
    // Warm-up (JIT, Redis scripts loaded) before anything is measured.
    await sleep(500);
    for (const deployment of deployments) {
      await deliveryWindow(`${deployment.mode} warm-up:`, deployment.instances, publishOn(deployment), {
        rate: 10,
        seconds: 1,
      });
    }
    const bases = await measureBase(deployments, plan);
    const curves = await measureCurve(deployments, plan);
    const costs: RedisCost[] = [];
    for (const deployment of deployments) costs.push(await measureRedisCost(deployment, plan.redisBurst));
    results = deployments.map((deployment, i) => {
      const [base, steps, redis] = [bases[i], curves[i], costs[i]];
      if (!base || !steps || !redis) throw new Error(`missing results for ${deployment.mode}`);
      return { deployment, base, steps, redis };
    });
    for (const deployment of deployments) {
      for (const instance of deployment.instances) await instance.pool.closeAll();
    }
    floor = await measureFloor(secret, plan, cleanups);
  } catch (error) {
    for (const deployment of deployments) {
      for (const instance of deployment.instances) {
        console.error(`${deployment.mode} instance ${instance.label} output:\n${instance.server.tail()}`);
      }
    }
    throw error;
  } finally {
    await runCleanups(cleanups);
  }
  await report({ plan, results, floor, minutes: (nowMs() - startedAt) / 60_000, prefix });
}

/**
 * What this machine allows, for comparison: the same fan-out (2 × the streams, the same load
 * generators, 5 ev/s) served by two minimal node:http servers (bench/minimal-server.ts: no auth,
 * no framework, no bus; the orchestrator posts each event to both, which stands in for Redis).
 */
async function measureFloor(secret: string, plan: ClusterPlan, cleanups: Cleanups): Promise<ClusterWindow> {
  const instances: Instance[] = [];
  const publishers: Publisher[] = [];
  for (const label of ['A', 'B']) {
    log(`starting floor server ${label}: ${MINIMAL_ENTRY}`);
    const server = await startBenchServer({ entry: MINIMAL_ENTRY, env: () => ({ PORT: '0' }), cleanups });
    const pool = await LoadPool.start({
      processes: 1,
      baseUrl: server.baseUrl,
      streamPath: MINIMAL_STREAM_PATH,
      secret,
    });
    cleanups.push(() => pool.stop());
    const publisher = new Publisher(server.baseUrl, { path: MINIMAL_PUBLISH_PATH, token: '' });
    cleanups.push(async () => publisher.close());
    publishers.push(publisher);
    instances.push({ label, server, pool });
    const opened = await pool.open(plan.streamsPerInstance, OPEN_RATE, 60_000);
    log(`floor server ${label}: ${opened.established} streams open, ${opened.failed} failed`);
  }
  // The same title (send time) reaches both: each server gets its own POST, sent together.
  const publish = async () => {
    const statuses = await Promise.all(publishers.map((publisher) => publisher.publish()));
    return statuses.find((status) => status < 200 || status >= 300) ?? 202;
  };
  await deliveryWindow('floor warm-up:', instances, publish, { rate: 10, seconds: 1 });
  const floor = summarize([
    await deliveryWindow('floor:', instances, publish, { rate: BASE_RATE, seconds: plan.floorSeconds }),
  ]);
  for (const instance of instances) await instance.pool.closeAll();
  return floor;
}

const lat = (summary: LatencySummary) => `${fmtMs(summary.p50)} / ${fmtMs(summary.p99)} / ${fmtMs(summary.max)}`;

/** The curve's fastest step that passed (p99 ≤ the limit, nothing lost): the fan-out throughput. */
const topPassing = (steps: readonly ClusterWindow[]) => steps.filter((step) => stepOk(step.all)).at(-1);

const BUS_CONNECTION = 'A/infinitescribe:cmd';

/** Commands A's bus connection sent per publish, and on the Cluster whether they all went to the slot's primary. */
function busRoundTrips(result: ModeResult): { value: string; pass: boolean | undefined } {
  const { redis, deployment } = result;
  if (!redis.monitorOk) return { value: 'n/a', pass: undefined };
  const perPublish = pick(redis.perConnection, BUS_CONNECTION);
  const total = sumCounts(perPublish);
  if (!deployment.bus) return { value: fmtCounts(perPublish), pass: Math.abs(total - 1) < 0.05 };
  const owner = nodeName(deployment.bus.owner);
  const elsewhere = Object.entries(redis.busCommandsByNode)
    .filter(([node]) => node !== owner)
    .reduce((sum, [, count]) => sum + count, 0);
  return {
    value: `${fmtCounts(perPublish)} — on ${owner} (the slot's primary) ${(redis.busCommandsByNode[owner] ?? 0).toFixed(2)}, elsewhere ${elsewhere.toFixed(2)}`,
    pass: Math.abs(total - 1) < 0.05 && elsewhere < 0.05,
  };
}

function modeSection(
  result: ModeResult,
  run: { plan: ClusterPlan; alongside: boolean },
): { text: string; passed: number; judged: number } {
  const { plan } = run;
  const { deployment, base, steps, redis } = result;
  const [a, b] = base.perInstance;
  if (!a || !b) throw new Error('missing per-instance results');
  const best = topPassing(steps);
  const cluster = deployment.bus !== undefined;
  const roundTrips = busRoundTrips(result);
  const busNote = deployment.bus ? `, on ${nodeName(deployment.bus.owner)}: slot ${deployment.bus.slot}` : '';
  const rows: VerdictRow[] = [
    [
      `Delivery latency p50 / p99 / max, ms — all ${fmtInt(base.all.streams)} streams (${BASE_RATE} ev/s = ${fmtInt(BASE_RATE * base.all.streams)} deliveries/s, ${plan.baseSeconds} s in ${plan.baseRounds} rounds)`,
      lat(base.all.latency),
      `p99 ≤ ${TARGET_DELIVERY_P99_MS} ms`,
      base.all.latency.p99 <= TARGET_DELIVERY_P99_MS,
    ],
    [
      `… on A (publishing instance, local fan-out; ${fmtInt(a.streams)} streams)`,
      lat(a.latency),
      `p99 ≤ ${TARGET_DELIVERY_P99_MS} ms`,
      a.latency.p99 <= TARGET_DELIVERY_P99_MS,
    ],
    [
      `… on B (through ${cluster ? 'sharded pub/sub' : 'Redis pub/sub'}; ${fmtInt(b.streams)} streams)`,
      lat(b.latency),
      `p99 ≤ ${TARGET_DELIVERY_P99_MS} ms`,
      b.latency.p99 <= TARGET_DELIVERY_P99_MS,
    ],
    [
      'Delivered (received / expected), both instances; duplicates or out of order (per-stream ids not increasing)',
      `${fmtPct(base.all.ratio)}; ${base.all.orderErrors}`,
      '100 %; 0',
      base.all.ratio === 1 && base.all.orderErrors === 0,
    ],
    [
      `Publish-to-ack p50 / p99 / max, ms (HTTP POST on A, ${base.ack.count} requests at ${BASE_RATE}/s)`,
      lat(base.ack),
      `p99 ≤ ${TARGET_ACK_P99_MS} ms`,
      base.ack.p99 <= TARGET_ACK_P99_MS,
    ],
    [
      `Redis round trips per publish: commands A's bus connection (\`infinitescribe:cmd\`) sent during N = ${redis.publishes} sequential publishes, / N (MONITOR${cluster ? ' on every primary' : ''})`,
      roundTrips.value,
      cluster ? "1, independent of connections, on the slot's primary" : '1, independent of connections',
      roundTrips.pass,
    ],
    [
      '… every other connection of A and B during the burst, / N (MONITOR; periodic lease renewals and probes may land in it; info)',
      redis.monitorOk ? fmtCounts(omit(redis.perConnection, BUS_CONNECTION)) : 'n/a',
      '—',
      undefined,
    ],
    [
      cluster
        ? `INFO commandstats Δ(evalsha + eval) / N per primary — burst / idle window as long (the Cluster is the run's own${busNote}; info)`
        : 'INFO commandstats Δ(evalsha + eval) / N — burst / idle window as long (global: other clients count; info)',
      `${fmtNodes(redis.evalPerPublish)} / ${fmtNodes(redis.evalIdlePerPublish)}`,
      '—',
      undefined,
    ],
    [
      `INFO commandstats Δ(all calls) / N${cluster ? ', all primaries' : ''} — burst / idle (${cluster ? '' : 'global, '}includes the script's inner calls; info)`,
      `${redis.totalPerPublish.toFixed(2)} / ${redis.totalIdlePerPublish.toFixed(2)}`,
      '—',
      undefined,
    ],
    [
      `Fan-out throughput, deliveries/s with p99 ≤ ${THROUGHPUT_P99_LIMIT_MS} ms (info)`,
      best ? `${fmtInt(best.all.deliveriesPerSec)} (at ${best.rate} ev/s)` : 'none',
      '—',
      undefined,
    ],
  ];
  const { table, passed, judged } = verdictTable('Measured', rows);
  const curve = [
    '| ev/s (target) | published ev/s | deliveries/s | p50 ms | p99 ms | max ms | p99 on A ms | p99 on B ms | delivered | disconnects | ack p99 ms | CPU A | CPU B | CPU clients | CPU other |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...[base, ...steps].map((w, i) => {
      const [wa, wb] = w.perInstance;
      return (
        `| ${w.rate}${i === 0 ? ' (base)' : ''}${w.attempt === 2 ? ' (2nd try)' : ''} | ${w.all.publishedPerSec.toFixed(1)} | ${fmtInt(w.all.deliveriesPerSec)} | ` +
        `${fmtMs(w.all.latency.p50)} | ${fmtMs(w.all.latency.p99)} | ${fmtMs(w.all.latency.max)} | ` +
        `${fmtMs(wa?.latency.p99 ?? NaN)} | ${fmtMs(wb?.latency.p99 ?? NaN)} | ${fmtPct(w.all.ratio)} | ${w.all.disconnects} | ` +
        `${fmtMs(w.ack.p99)} | ${(wa?.serverCpuPct ?? NaN).toFixed(0)} % | ${(wb?.serverCpuPct ?? NaN).toFixed(0)} % | ` +
        `${w.all.clientCpuPct.toFixed(0)} % | ${w.all.otherCpuPct.toFixed(0)} % |`
      );
    }),
  ].join('\n');
  const worstOther = Math.max(0, ...[base, ...steps].map((w) => w.all.otherCpuPct));
  const warning =
    worstOther >= 25
      ? `\n\n⚠ Other processes used up to ${worstOther.toFixed(0)} % of a core during the delivery windows: latency rows are distorted; re-run on an idle machine.`
      : '';
  const text =
    `### ${deployment.title} (${deployment.nodes.map(nodeName).join(', ')}${busNote})\n\n` +
    `${table}\n\n${passed} of ${judged} rows pass.${warning}\n\n` +
    `#### Curve: deliveries/s against p99 (publishes on A; ${plan.stepSeconds} s steps until p99 > ${THROUGHPUT_P99_LIMIT_MS} ms)\n\n` +
    `CPU is % of one core while publishing: instance A, instance B, load generators + publisher, everything else ` +
    `(Redis${cluster ? ' nodes' : ''}${run.alongside ? " and the other deployment's idle processes" : ''} included).\n\n${curve}\n\n` +
    `#### Redis commands seen by MONITOR (top-level, by \`<instance>/<client name> <command>\`${cluster ? ', all primaries' : ''})\n\n` +
    `- burst of ${redis.publishes} sequential publishes on A (${redis.burstMs.toFixed(0)} ms): ${fmtCounts(redis.burst)}\n` +
    `- idle window as long, no publishes: ${fmtCounts(redis.idle)}\n`;
  return { text, passed, judged };
}

/** One Redis and the Cluster side by side (same instances, same load, windows alternating). */
function comparisonTable(results: readonly ModeResult[]): string {
  const rows: [string, (result: ModeResult) => string][] = [
    [
      `Fan-out throughput: deliveries/s at the curve's top passing step (p99 ≤ ${THROUGHPUT_P99_LIMIT_MS} ms, nothing lost)`,
      (r) => {
        const best = topPassing(r.steps);
        return best ? `${fmtInt(best.all.deliveriesPerSec)} (${best.rate} ev/s)` : 'none';
      },
    ],
    [
      '… p99 at that step, ms: all / on A / on B',
      (r) => {
        const best = topPassing(r.steps);
        const [a, b] = best?.perInstance ?? [];
        return best
          ? `${fmtMs(best.all.latency.p99)} / ${fmtMs(a?.latency.p99 ?? NaN)} / ${fmtMs(b?.latency.p99 ?? NaN)}`
          : '—';
      },
    ],
    [
      '… the first step that failed: ev/s, p99 ms',
      (r) => {
        const failed = r.steps.find((step) => !stepOk(step.all));
        return failed
          ? `${failed.rate}, ${fmtMs(failed.all.latency.p99)}`
          : `none up to ${r.steps.at(-1)?.rate ?? '—'}`;
      },
    ],
    [
      `Base window (${BASE_RATE} ev/s) delivery p99, ms: all / on A / on B`,
      (r) => {
        const [a, b] = r.base.perInstance;
        return `${fmtMs(r.base.all.latency.p99)} / ${fmtMs(a?.latency.p99 ?? NaN)} / ${fmtMs(b?.latency.p99 ?? NaN)}`;
      },
    ],
    ['… delivered; duplicates or out of order', (r) => `${fmtPct(r.base.all.ratio)}; ${r.base.all.orderErrors}`],
    ['Publish-to-ack p50 / p99, ms (base window)', (r) => `${fmtMs(r.base.ack.p50)} / ${fmtMs(r.base.ack.p99)}`],
    ["Redis round trips per publish (A's bus connection, MONITOR)", (r) => busRoundTrips(r).value],
    ['INFO commandstats Δ(evalsha + eval) / N per node (burst)', (r) => fmtNodes(r.redis.evalPerPublish)],
    [
      // CPU time, not latency: what other processes do to the clock matters much less here.
      'Server CPU per delivery, µs, base window (publish handling included): A / B',
      (r) => {
        const [a, b] = r.base.perInstance;
        return `${(a?.serverUsPerDelivery ?? NaN).toFixed(1)} / ${(b?.serverUsPerDelivery ?? NaN).toFixed(1)}`;
      },
    ],
    [
      'CPU, % of a core, base window: A / B / clients / everything else',
      (r) => {
        const [a, b] = r.base.perInstance;
        return `${(a?.serverCpuPct ?? NaN).toFixed(0)} / ${(b?.serverCpuPct ?? NaN).toFixed(0)} / ${r.base.all.clientCpuPct.toFixed(0)} / ${r.base.all.otherCpuPct.toFixed(0)}`;
      },
    ],
  ];
  return [
    `| Metric | ${results.map((r) => r.deployment.title).join(' | ')} |`,
    `| --- | ${results.map(() => '---:').join(' | ')} |`,
    ...rows.map(([name, value]) => `| ${name} | ${results.map(value).join(' | ')} |`),
  ].join('\n');
}

async function report(run: {
  plan: ClusterPlan;
  results: ModeResult[];
  floor: ClusterWindow;
  minutes: number;
  prefix: string;
}): Promise<void> {
  const { plan, results, floor } = run;
  const sections = results.map((result) => modeSection(result, { plan, alongside: results.length > 1 }));
  const [first] = results;
  const floorLine =
    `### The floor (two minimal node:http servers, ${plan.floorSeconds} s at ${BASE_RATE} ev/s)\n\n` +
    `Delivery p50 / p99 / max ${lat(floor.all.latency)} ms; delivered ${fmtPct(floor.all.ratio)}; CPU per server ` +
    `${(floor.perInstance[0]?.serverCpuPct ?? NaN).toFixed(0)} % / ${(floor.perInstance[1]?.serverCpuPct ?? NaN).toFixed(0)} %, ` +
    `clients ${floor.all.clientCpuPct.toFixed(0)} %, other ${floor.all.otherCpuPct.toFixed(0)} %` +
    (first ? ` (${first.deployment.title}, base window: ${lat(first.base.all.latency)} ms).\n` : '.\n');
  const header =
    `## SSE benchmark — scenario cluster${plan.name === 'quick' ? ' (--quick: smoke run, not the acceptance numbers)' : ''}\n\n` +
    `${new Date().toISOString()} · node ${process.version} · ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'} · ` +
    `2 instances (prefix ${run.prefix}) on ${results.map((r) => r.deployment.title).join(' and on ')}, ` +
    `${fmtInt(plan.streamsPerInstance)} streams each, + load generators + publisher on 127.0.0.1 · ` +
    `${run.minutes.toFixed(1)} min · waited ${(quiet.waitedMs / 1000).toFixed(0)} s for quiet` +
    `${quiet.exhausted ? ' (budget exhausted: some windows ran on a busy machine)' : ''}`;
  const comparison =
    results.length > 1
      ? `### Side by side (same instances and load; windows alternated between the two)\n\n${comparisonTable(results)}\n\n`
      : '';
  const text = `${header}\n\n${comparison}${sections.map((section) => section.text).join('\n')}\n${floorLine}`;
  console.log(`\n${text}`);
  await mkdir(RESULTS_DIR, { recursive: true });
  await writeFile(join(RESULTS_DIR, 'cluster-latest.md'), text);
  console.log('written to bench/results/cluster-latest.md');
}

function pick(counts: Counts, owner: string): Counts {
  return Object.fromEntries(Object.entries(counts).filter(([key]) => key.startsWith(`${owner} `)));
}

function omit(counts: Counts, owner: string): Counts {
  return Object.fromEntries(Object.entries(counts).filter(([key]) => !key.startsWith(`${owner} `)));
}

function sumCounts(counts: Counts): number {
  return Object.values(counts).reduce((sum, value) => sum + value, 0);
}

function fmtCounts(counts: Counts): string {
  const entries = Object.entries(counts).filter(([, value]) => Math.abs(value) >= 0.005);
  if (entries.length === 0) return '0';
  return entries.map(([name, value]) => `${name} ${value.toFixed(2)}`).join(', ');
}

/** Every node's value, zeros included (where a command did not go matters on a Cluster). */
function fmtNodes(counts: Counts): string {
  return Object.entries(counts)
    .map(([node, value]) => `${node} ${value.toFixed(2)}`)
    .join(', ');
}
