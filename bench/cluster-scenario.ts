import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Histogram, type LatencySummary, nowMs } from './histogram.js';
import { LoadPool } from './load-pool.js';
import {
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
  runCleanups,
  type ServerProcess,
  startBenchServer,
  startOurServer,
  stopChild,
} from './processes.js';
import { Publisher, publisherToken } from './publisher.js';
import { verdictTable, type VerdictRow } from './report.js';

/**
 * `npm run bench -- --scenario=cluster` — two instances of our server sharing one Redis (the
 * Redis bus), 2,500 streams on each, every event published on instance A. Measures delivery latency
 * on A (local fan-out) and on B (through Redis), publish-to-ack, the deliveries/s ↔ p99 curve, and
 * the Redis commands each publish costs. See bench/README.md.
 */

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const REDIS_URL = 'redis://127.0.0.1:6379';
const STREAM_PATH = '/api/sse/stream?topics=broadcast';
const PUBLISH_PATH = '/api/events';
const STREAMS_PER_INSTANCE = 2_500;
const OPEN_RATE = 1_000;
const BASE_RATE = 5;
/**
 * Publishes timed in the base window: every one of them is a publish-to-ack sample, and a p99 of
 * fewer than a few hundred samples is just the maximum. So the base window lasts 100 s.
 */
const ACK_SAMPLES = 500;
const BASE_SECONDS = ACK_SAMPLES / BASE_RATE;
const STEPS = [5, 10, 15, 20, 30, 40, 60, 80, 100, 130, 160, 200];
const STEP_SECONDS = 4;
const REDIS_BURST = 100;
const TARGET_DELIVERY_P99_MS = 50;
const MINIMAL_ENTRY = 'bench/minimal-server.ts';
const MINIMAL_STREAM_PATH = '/stream?topics=broadcast';
const MINIMAL_PUBLISH_PATH = '/publish';
const FLOOR_SECONDS = 30;
const TARGET_ACK_P99_MS = 10;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const execFileAsync = promisify(execFile);

async function redisCli(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('redis-cli', ['-h', '127.0.0.1', '-p', '6379', ...args], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

/** `cmdstat_<name>` → calls, from `INFO commandstats` (global to the Redis server). */
async function commandStats(): Promise<Map<string, number>> {
  const stats = new Map<string, number>();
  for (const match of (await redisCli('INFO', 'commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    stats.set(match[1] ?? '', Number(match[2]));
  }
  return stats;
}

interface RedisClient {
  id: number;
  addr: string;
  name: string;
}

async function clientList(): Promise<RedisClient[]> {
  return (await redisCli('CLIENT', 'LIST'))
    .split('\n')
    .filter((line) => line.startsWith('id='))
    .map((line) => ({
      id: Number(/\bid=(\d+)/.exec(line)?.[1] ?? 0),
      addr: /\baddr=(\S+)/.exec(line)?.[1] ?? '',
      name: /\bname=(\S*)/.exec(line)?.[1] ?? '',
    }));
}

/** Deletes every key containing the run's unique prefix (SCAN MATCH + DEL, never FLUSH). */
async function deleteKeys(prefix: string): Promise<number> {
  const keys = (await redisCli('--scan', '--pattern', `*${prefix}*`)).split('\n').filter((key) => key !== '');
  for (let i = 0; i < keys.length; i += 500) await redisCli('DEL', ...keys.slice(i, i + 500));
  return keys.length;
}

interface Instance {
  label: string;
  server: ServerProcess;
  pool: LoadPool;
  /** Redis clients this instance opened (found by diffing CLIENT LIST around its start). */
  clients: RedisClient[];
}

/** One delivery window on both instances at once: per-instance samples and the combination. */
interface ClusterWindow {
  rate: number;
  perInstance: DeliveryResult[];
  all: DeliveryResult;
  ack: LatencySummary;
}

interface RedisCost {
  publishes: number;
  burstMs: number;
  /** INFO commandstats deltas / N, during the burst and during an idle window as long. */
  evalPerPublish: number;
  evalIdlePerPublish: number;
  totalPerPublish: number;
  totalIdlePerPublish: number;
  /** `<instance>/<client name> <command>` → top-level commands seen by MONITOR. */
  burst: Record<string, number>;
  idle: Record<string, number>;
  /** Burst count / N per key (the idle window is shown beside it: lease renewals and probes are periodic). */
  perConnection: Record<string, number>;
  monitorOk: boolean;
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
  instances: readonly Instance[],
  publish: () => Promise<number>,
  rate: number,
  seconds: number,
): Promise<ClusterWindow> {
  await waitForQuiet(`cluster ${rate} ev/s`);
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
  const samples: DeliverySample[] = instances.map((instance, i) => {
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
  const [a, b] = samples;
  if (!a || !b) throw new Error('expected two instances');
  const latency = new Histogram();
  latency.merge(a.latency.toData());
  latency.merge(b.latency.toData());
  const combined: DeliverySample = {
    ...a,
    activeMs: Math.max(a.activeMs, b.activeMs),
    streams: a.streams + b.streams,
    expected: a.expected + b.expected,
    received: a.received + b.received,
    latency,
    disconnects: a.disconnects + b.disconnects,
    orderErrors: a.orderErrors + b.orderErrors,
    serverCpuMs: a.serverCpuMs + b.serverCpuMs,
    serverCpuTotalMs: a.serverCpuTotalMs + b.serverCpuTotalMs,
    clientCpuMs: a.clientCpuMs + b.clientCpuMs,
  };
  const window: ClusterWindow = {
    rate,
    perInstance: samples.map((sample) => toResult(sample)),
    all: toResult(combined),
    ack: ack.summary(),
  };
  log(
    `cluster ${rate} ev/s → ${fmtInt(window.all.deliveriesPerSec)} deliveries/s, p99 ${fmtMs(window.all.latency.p99)} ms ` +
      `(A ${fmtMs(window.perInstance[0]?.latency.p99 ?? NaN)}, B ${fmtMs(window.perInstance[1]?.latency.p99 ?? NaN)}), ` +
      `delivered ${fmtPct(window.all.ratio)}, ack p99 ${fmtMs(window.ack.p99)} ms`,
  );
  return window;
}

type Counts = Record<string, number>;

/**
 * Redis commands per publish. INFO commandstats is global (other clients and the scripts' inner
 * calls count too), so the commands are also counted per connection with MONITOR, keyed by
 * `<instance>/<client name>` (our clients, found in CLIENT LIST): once during an idle window, once
 * during N sequential publishes on A, once during an idle window as long; per publish = burst / N,
 * the idle window showing what is periodic (lease renewals every ~15 s, the subscriber probe).
 */
async function measureRedisCost(instances: readonly Instance[], publisher: Publisher): Promise<RedisCost> {
  const owners = new Map<string, string>();
  for (const instance of instances) {
    for (const client of instance.clients) owners.set(client.addr, `${instance.label}/${client.name}`);
  }
  const monitor = spawn('redis-cli', ['-h', '127.0.0.1', '-p', '6379', 'MONITOR'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let counting: Counts | undefined;
  let buffered = '';
  monitor.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    if (!counting) return;
    for (const line of lines) {
      const match = /^\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]+)"/.exec(line);
      const owner = match?.[1] === undefined ? undefined : owners.get(match[1]);
      if (!owner || !match?.[2]) continue;
      const key = `${owner} ${match[2].toLowerCase()}`;
      counting[key] = (counting[key] ?? 0) + 1;
    }
  });
  try {
    await sleep(500);
    const monitorOk = monitor.exitCode === null;
    const burst: Counts = {};
    counting = burst;
    const before = await commandStats();
    const burstStart = nowMs();
    let accepted = 0;
    for (let i = 0; i < REDIS_BURST; i++) {
      const status = await publisher.publish();
      if (status >= 200 && status < 300) accepted++;
    }
    const after = await commandStats();
    const burstMs = nowMs() - burstStart;
    await sleep(300);
    const idle: Counts = {};
    counting = idle;
    const idleBefore = await commandStats();
    await sleep(burstMs);
    const idleAfter = await commandStats();
    await sleep(300);
    counting = undefined;
    const delta = (a: Map<string, number>, b: Map<string, number>, name: string) =>
      (b.get(name) ?? 0) - (a.get(name) ?? 0);
    const totalOf = (a: Map<string, number>, b: Map<string, number>) =>
      [...b.keys()].filter((name) => name !== 'info').reduce((sum, name) => sum + delta(a, b, name), 0);
    const n = Math.max(1, accepted);
    const perConnection: Counts = {};
    for (const [key, count] of Object.entries(burst)) perConnection[key] = count / n;
    const evals = (a: Map<string, number>, b: Map<string, number>) => delta(a, b, 'evalsha') + delta(a, b, 'eval');
    const cost: RedisCost = {
      publishes: accepted,
      burstMs,
      evalPerPublish: evals(before, after) / n,
      evalIdlePerPublish: evals(idleBefore, idleAfter) / n,
      totalPerPublish: totalOf(before, after) / n,
      totalIdlePerPublish: totalOf(idleBefore, idleAfter) / n,
      burst,
      idle,
      perConnection,
      monitorOk,
    };
    log(
      `redis: ${accepted} publishes in ${burstMs.toFixed(0)} ms; Δ(evalsha+eval)/N ${cost.evalPerPublish.toFixed(2)} ` +
        `(idle window ${cost.evalIdlePerPublish.toFixed(2)}), Δall/N ${cost.totalPerPublish.toFixed(2)} ` +
        `(idle ${cost.totalIdlePerPublish.toFixed(2)}); burst ${JSON.stringify(burst)}; idle ${JSON.stringify(idle)}`,
    );
    return cost;
  } finally {
    await stopChild(monitor, 2_000);
  }
}

async function startInstance(
  label: string,
  options: { secret: string; prefix: string },
  cleanups: Cleanups,
): Promise<Instance> {
  const known = new Set((await clientList()).map((client) => client.id));
  log(`starting instance ${label}: ${OUR_ENTRY} (Redis bus, prefix ${options.prefix})`);
  const server = await startOurServer({
    secret: options.secret,
    env: { REDIS_URL, REDIS_KEY_PREFIX: options.prefix, INSTANCE_ID: `${options.prefix}-${label}` },
    cleanups,
  });
  const clients = (await clientList()).filter(
    (client) => !known.has(client.id) && client.name.startsWith('infinitescribe'),
  );
  log(
    `instance ${label}: pid ${server.pid} at ${server.baseUrl}; Redis clients ${clients.map((c) => c.name).join(', ')}`,
  );
  const pool = await LoadPool.start({
    processes: 1,
    baseUrl: server.baseUrl,
    streamPath: STREAM_PATH,
    secret: options.secret,
    maxStreams: STREAMS_PER_INSTANCE,
  });
  cleanups.push(() => pool.stop());
  return { label, server, pool, clients };
}

export async function runCluster(): Promise<void> {
  const startedAt = nowMs();
  const prefix = `bench${randomBytes(4).toString('hex')}`;
  const secret = randomBytes(32).toString('hex');
  log(
    `scenario cluster: 2 instances + Redis ${REDIS_URL}, ${STREAMS_PER_INSTANCE} streams each; node ${process.version}`,
  );
  const cleanups: Cleanups = [() => deleteKeys(prefix).then((n) => log(`deleted ${n} Redis keys *${prefix}*`))];
  const instances: Instance[] = [];
  let base: ClusterWindow;
  const steps: ClusterWindow[] = [];
  let redis: RedisCost;
  let floor: ClusterWindow;
  try {
    // Started one after the other, so that each one's Redis clients can be told apart in CLIENT LIST.
    for (const label of ['A', 'B']) instances.push(await startInstance(label, { secret, prefix }, cleanups));
    const [a] = instances;
    if (!a) throw new Error('no instance A');
    const token = await publisherToken(secret);
    const publisher = new Publisher(a.server.baseUrl, { path: PUBLISH_PATH, token });
    cleanups.push(async () => publisher.close());
    for (const instance of instances) {
      const opened = await instance.pool.open(STREAMS_PER_INSTANCE, OPEN_RATE, 60_000);
      log(
        `instance ${instance.label}: ${opened.established} streams open, ${opened.failed} failed ${JSON.stringify(opened.failures)}`,
      );
    }
    // Warm-up (JIT, Redis scripts loaded) before anything is measured.
    await sleep(500);
    const publish = () => publisher.publish();
    await deliveryWindow(instances, publish, 10, 1);
    base = await deliveryWindow(instances, publish, BASE_RATE, BASE_SECONDS);
    for (const rate of STEPS) {
      const step = await deliveryWindow(instances, publish, rate, STEP_SECONDS);
      steps.push(step);
      if (!stepOk(step.all)) break;
    }
    redis = await measureRedisCost(instances, publisher);
    for (const instance of instances) await instance.pool.closeAll();
    floor = await measureFloor(secret, cleanups);
  } catch (error) {
    for (const instance of instances) console.error(`instance ${instance.label} output:\n${instance.server.tail()}`);
    throw error;
  } finally {
    await runCleanups(cleanups);
  }
  await report({ base, steps, redis, floor, minutes: (nowMs() - startedAt) / 60_000, prefix });
}

/**
 * What this machine allows, for comparison: the same fan-out (2 × 2,500 streams, the same load
 * generators, 5 ev/s) served by two minimal node:http servers (bench/minimal-server.ts: no auth,
 * no framework, no bus; the orchestrator posts each event to both, which stands in for Redis).
 */
async function measureFloor(secret: string, cleanups: Cleanups): Promise<ClusterWindow> {
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
      maxStreams: STREAMS_PER_INSTANCE,
    });
    cleanups.push(() => pool.stop());
    const publisher = new Publisher(server.baseUrl, { path: MINIMAL_PUBLISH_PATH, token: '' });
    cleanups.push(async () => publisher.close());
    publishers.push(publisher);
    instances.push({ label, server, pool, clients: [] });
    const opened = await pool.open(STREAMS_PER_INSTANCE, OPEN_RATE, 60_000);
    log(`floor server ${label}: ${opened.established} streams open, ${opened.failed} failed`);
  }
  // The same title (send time) reaches both: each server gets its own POST, sent together.
  const publish = async () => {
    const statuses = await Promise.all(publishers.map((publisher) => publisher.publish()));
    return statuses.find((status) => status < 200 || status >= 300) ?? 202;
  };
  await deliveryWindow(instances, publish, 10, 1);
  const floor = await deliveryWindow(instances, publish, BASE_RATE, FLOOR_SECONDS);
  for (const instance of instances) await instance.pool.closeAll();
  return floor;
}

async function report(run: {
  base: ClusterWindow;
  steps: ClusterWindow[];
  redis: RedisCost;
  floor: ClusterWindow;
  minutes: number;
  prefix: string;
}): Promise<void> {
  const { base, steps, redis, floor } = run;
  const [a, b] = base.perInstance;
  if (!a || !b) throw new Error('missing per-instance results');
  const lat = (summary: LatencySummary) => `${fmtMs(summary.p50)} / ${fmtMs(summary.p99)} / ${fmtMs(summary.max)}`;
  const passed = steps.filter((step) => stepOk(step.all));
  const best = passed.at(-1);
  const rows: VerdictRow[] = [
    [
      `Delivery latency p50 / p99 / max, ms — all ${fmtInt(base.all.streams)} streams (${BASE_RATE} ev/s = ${fmtInt(BASE_RATE * base.all.streams)} deliveries/s, ${BASE_SECONDS} s)`,
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
      `… on B (through Redis pub/sub; ${fmtInt(b.streams)} streams)`,
      lat(b.latency),
      `p99 ≤ ${TARGET_DELIVERY_P99_MS} ms`,
      b.latency.p99 <= TARGET_DELIVERY_P99_MS,
    ],
    [
      `… the floor: the same fan-out by two minimal node:http servers (no auth, no framework, no bus; ${FLOOR_SECONDS} s) — what this machine allows (info)`,
      lat(floor.all.latency),
      '—',
      undefined,
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
      `Redis round trips per publish: commands A's bus connection (\`infinitescribe:cmd\`) sent during N = ${redis.publishes} sequential publishes, / N (MONITOR)`,
      redis.monitorOk ? fmtCounts(pick(redis.perConnection, 'A/infinitescribe:cmd')) : 'n/a',
      '1, independent of connections',
      redis.monitorOk ? Math.abs(sumCounts(pick(redis.perConnection, 'A/infinitescribe:cmd')) - 1) < 0.05 : undefined,
    ],
    [
      '… every other connection of A and B during the burst, / N (MONITOR; periodic lease renewals and probes may land in it; info)',
      redis.monitorOk ? fmtCounts(omit(redis.perConnection, 'A/infinitescribe:cmd')) : 'n/a',
      '—',
      undefined,
    ],
    [
      'INFO commandstats Δ(evalsha + eval) / N — burst / idle window as long (global: other clients count; info)',
      `${redis.evalPerPublish.toFixed(2)} / ${redis.evalIdlePerPublish.toFixed(2)}`,
      '—',
      undefined,
    ],
    [
      "INFO commandstats Δ(all calls) / N — burst / idle (global, includes the script's inner calls; info)",
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
  const { table, passed: rowsPassed, judged } = verdictTable('Measured', rows);
  const curve = [
    '| ev/s (target) | published ev/s | deliveries/s | p50 ms | p99 ms | max ms | p99 on A ms | p99 on B ms | delivered | disconnects | ack p99 ms | CPU A | CPU B | CPU clients | CPU other |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...[base, ...steps].map((w, i) => {
      const [wa, wb] = w.perInstance;
      return (
        `| ${w.rate}${i === 0 ? ' (base)' : ''} | ${w.all.publishedPerSec.toFixed(1)} | ${fmtInt(w.all.deliveriesPerSec)} | ` +
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
  const header =
    `## SSE benchmark — scenario cluster\n\n${new Date().toISOString()} · node ${process.version} · ${cpus().length} × ` +
    `${cpus()[0]?.model ?? 'cpu'} · 2 instances (Redis bus, prefix ${run.prefix}) + Redis + load generators + publisher on 127.0.0.1 · ` +
    `${run.minutes.toFixed(1)} min · waited ${(quiet.waitedMs / 1000).toFixed(0)} s for quiet`;
  const text =
    `${header}\n\n${table}\n\n${rowsPassed} of ${judged} rows pass.${warning}\n\n` +
    `### Curve: deliveries/s against p99 (publishes on A; ${STEP_SECONDS} s steps until p99 > ${THROUGHPUT_P99_LIMIT_MS} ms)\n\n` +
    `CPU is % of one core while publishing: instance A, instance B, load generators + publisher, everything else (Redis included).\n\n${curve}\n\n` +
    `### Redis commands seen by MONITOR (top-level, by \`<instance>/<client name> <command>\`)\n\n` +
    `- burst of ${redis.publishes} sequential publishes on A (${redis.burstMs.toFixed(0)} ms): ${fmtCounts(redis.burst)}\n` +
    `- idle window as long, no publishes: ${fmtCounts(redis.idle)}\n\n` +
    `### The floor (two minimal node:http servers, ${FLOOR_SECONDS} s at ${BASE_RATE} ev/s)\n\n` +
    `Delivery p50 / p99 / max ${lat(floor.all.latency)} ms (ours, base window: ${lat(base.all.latency)} ms); delivered ` +
    `${fmtPct(floor.all.ratio)}; CPU per server ${(floor.perInstance[0]?.serverCpuPct ?? NaN).toFixed(0)} % / ` +
    `${(floor.perInstance[1]?.serverCpuPct ?? NaN).toFixed(0)} % (ours: ${a.serverCpuPct.toFixed(0)} % / ${b.serverCpuPct.toFixed(0)} %), ` +
    `clients ${floor.all.clientCpuPct.toFixed(0)} %, other ${floor.all.otherCpuPct.toFixed(0)} %.\n`;
  console.log(`\n${text}`);
  await mkdir(RESULTS_DIR, { recursive: true });
  await writeFile(join(RESULTS_DIR, 'cluster-latest.md'), text);
  console.log('written to bench/results/cluster-latest.md');
}

function pick(counts: Record<string, number>, owner: string): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter(([key]) => key.startsWith(`${owner} `)));
}

function omit(counts: Record<string, number>, owner: string): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter(([key]) => !key.startsWith(`${owner} `)));
}

function sumCounts(counts: Record<string, number>): number {
  return Object.values(counts).reduce((sum, value) => sum + value, 0);
}

function fmtCounts(counts: Record<string, number>): string {
  const entries = Object.entries(counts).filter(([, value]) => Math.abs(value) >= 0.005);
  if (entries.length === 0) return '0';
  return entries.map(([name, value]) => `${name} ${value.toFixed(2)}`).join(', ');
}
