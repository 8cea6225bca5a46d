import { Histogram, type LatencySummary, nowMs } from './histogram.js';
import type { LoadPool, PoolStats } from './load-pool.js';
import { forceFullGc, readCpuMs, readMachineBusyMs, readRssKiB, type ServerProcess } from './processes.js';
import type { Publisher } from './publisher.js';

/** The measurements of bench/run.ts, one server at a time. */

export const THROUGHPUT_P99_LIMIT_MS = 100;

export interface Plan {
  name: string;
  /** Streams held for the memory measurement, and how fast streams are opened. */
  connections: number;
  openRate: number;
  /** The connect-latency phase. */
  connectCount: number;
  connectRate: number;
  /** Streams of the broadcast and throughput phases (per server). */
  fanoutStreams: number;
  broadcastRate: number;
  /** Broadcast measured in rounds of `broadcastRoundSeconds`, alternating between the servers. */
  broadcastSeconds: number;
  broadcastRoundSeconds: number;
  /** Publish rates (events/s) of the throughput steps; a server's ramp ends at its first step over the p99 limit. */
  steps: number[];
  stepSeconds: number;
  settleMs: number;
}

export type ServerKind = 'ours' | 'minimal' | 'nchan';

export interface ServerSpec {
  kind: ServerKind;
  label: string;
  entry: string;
  streamPath: string;
  publishPath: string;
  env: (options: { secret: string; dataDir: string }) => Record<string, string>;
}

/** One server under test with its load generators and publisher. */
export interface Bench {
  spec: ServerSpec;
  server: ServerProcess;
  pool: LoadPool;
  publisher: Publisher;
  plan: Plan;
}

/** Streams open (as the load generator sees them) and the server's RSS at that moment. */
export interface MemoryPoint {
  streams: number;
  rssKiB: number;
}

export interface MemoryResult {
  target: number;
  held: number;
  failed: number;
  failures: Record<string, number>;
  openSeconds: number;
  rampConnect: LatencySummary;
  baselineKiB: number;
  /** The baseline, then RSS after each segment of streams was opened. */
  points: MemoryPoint[];
  loadedKiB: number;
  /** ΔRSS / streams over the segments where RSS did not shrink: the acceptance number. */
  perStreamKiB: number;
  segmentsUsed: number;
  /** Growth of the V8 heap in use (garbage included) per stream: the JS objects' share of the RSS. */
  heapPerStreamKiB: number;
  /** Streams opened and closed before the baseline. */
  prime: number;
}

export interface ConnectResult {
  established: number;
  failed: number;
  failures: Record<string, number>;
  latency: LatencySummary;
}

/** Raw counters of one publishing window; windows of the same load can be added up. */
export interface DeliverySample {
  rate: number;
  accepted: number;
  publishFailures: Record<string, number>;
  /** Time spent publishing, and from the first publish to the last frame received, ms. */
  publishMs: number;
  activeMs: number;
  streams: number;
  expected: number;
  received: number;
  latency: Histogram;
  disconnects: number;
  /** Notifications that were duplicates or out of order on their stream (ids not increasing). */
  orderErrors: number;
  /** CPU used while publishing (ms) by the server, the load generators + publisher, the whole machine. */
  serverCpuMs: number;
  /** CPU the server used from the first publish until everything was delivered (drain included). */
  serverCpuTotalMs: number;
  clientCpuMs: number;
  machineCpuMs: number;
  windowMs: number;
}

export interface DeliveryResult {
  /** Target and achieved publish rates, events/s. */
  rate: number;
  publishedPerSec: number;
  accepted: number;
  publishFailures: Record<string, number>;
  streams: number;
  expected: number;
  received: number;
  /** received / expected. */
  ratio: number;
  deliveriesPerSec: number;
  latency: LatencySummary;
  disconnects: number;
  orderErrors: number;
  /** CPU while publishing, % of one core: the server; load generators + publisher; everything else. */
  serverCpuPct: number;
  clientCpuPct: number;
  otherCpuPct: number;
  /**
   * Server CPU (user + system, 10 ms ticks) per frame delivered, publish handling included: the
   * server's cost of fan-out, independent of how fast the clients read.
   */
  serverUsPerDelivery: number;
  /** 2 when the step was measured again after a failed first attempt. */
  attempt: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function log(message: string): void {
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

/**
 * The machine is shared (2 cores): before each measured window, wait until other processes leave
 * it alone — machine-wide busy time under 25 % of one core for a second (our own processes are idle
 * between windows). Bounded by a budget for the whole run.
 */
export const quiet = { budgetMs: 90_000, waitedMs: 0, exhausted: false };

export async function waitForQuiet(label: string): Promise<void> {
  const started = nowMs();
  for (;;) {
    const busyBefore = readMachineBusyMs();
    await sleep(1_000);
    const busyPct = (readMachineBusyMs() - busyBefore) / 10;
    if (busyPct < 25) break;
    if (quiet.waitedMs + (nowMs() - started) >= quiet.budgetMs) {
      if (!quiet.exhausted)
        log(`warning: the machine stays busy (${busyPct.toFixed(0)} % of a core); measuring anyway`);
      quiet.exhausted = true;
      break;
    }
    if (nowMs() - started < 1_500)
      log(`waiting for other processes to quiet down before ${label} (${busyPct.toFixed(0)} % busy)`);
  }
  quiet.waitedMs += Math.max(0, nowMs() - started - 1_000);
}

/** Open streams and V8 heap in use as the server reports them (`/metrics` for ours, `/stats` for the minimal one). */
export async function serverState(bench: Bench): Promise<{ connections: number; heapUsed: number }> {
  if (bench.spec.kind === 'nchan') {
    const text = await (await fetch(`${bench.server.baseUrl}/stats`)).text();
    return { connections: Number(/^subscribers: (\d+)/m.exec(text)?.[1] ?? NaN), heapUsed: NaN };
  }
  if (bench.spec.kind === 'minimal') {
    const response = await fetch(`${bench.server.baseUrl}/stats`);
    return (await response.json()) as { connections: number; heapUsed: number };
  }
  const text = await (await fetch(`${bench.server.baseUrl}/metrics`)).text();
  const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
  return { connections: metric('sse_connections_active'), heapUsed: metric('nodejs_heap_size_used_bytes') };
}

/** Closes every stream of a server and waits (bounded) until the server has let go of them. */
export async function closeStreams(bench: Bench): Promise<void> {
  await bench.pool.closeAll();
  const until = nowMs() + 20_000;
  while (nowMs() < until) {
    if ((await serverState(bench)).connections === 0) return;
    await sleep(200);
  }
  log(`warning: ${bench.spec.label} still counts open streams 20 s after they were closed`);
}

/** Waits until `expected` notifications arrived, nothing came for 1.5 s, or `timeoutMs`. */
async function drain(pool: LoadPool, expected: number, timeoutMs: number): Promise<PoolStats> {
  const until = nowMs() + timeoutMs;
  let stats = await pool.stats();
  let lastProgress = nowMs();
  let lastReceived = stats.received;
  while (stats.received < expected && nowMs() < until && nowMs() - lastProgress < 1_500) {
    await sleep(100);
    stats = await pool.stats();
    if (stats.received !== lastReceived) {
      lastReceived = stats.received;
      lastProgress = nowMs();
    }
  }
  return stats;
}

/** Waits (bounded) until the server's RSS has been steady (±1 MiB) for 3 s. */
async function settle(bench: Bench, maxWaitMs: number): Promise<void> {
  const until = nowMs() + maxWaitMs;
  const history: number[] = [];
  for (;;) {
    history.push(readRssKiB(bench.server.pid));
    const steady = history.length > 3 && Math.abs((history.at(-1) ?? 0) - (history.at(-4) ?? 0)) < 1024;
    if (steady || nowMs() >= until) return;
    await sleep(1_000);
  }
}

const MEMORY_SEGMENTS = 4;

/**
 * Per-stream memory: streams are opened in {@link MEMORY_SEGMENTS} equal segments with the RSS read
 * after each, and the result is ΔRSS / streams over the segments in which RSS did not shrink — with
 * no shrinking (the normal case) exactly (RSS with all − RSS before) / streams held.
 *
 * Why the care: our server carries ~400 MiB of start-up garbage (PGlite's WASM memory and buffers,
 * V8 "external" memory) until its first full GC, which otherwise lands at an unpredictable moment
 * (idle time, or a burst of connections) and would make ΔRSS meaningless, even negative. So, for
 * both servers alike: open and close a few hundred streams (JIT-warms the connect path), force a
 * full GC (heap-snapshot signal), wait for a steady RSS, then take the baseline. A GC that still
 * shrinks RSS inside the phase only voids the segment it lands in.
 */
export async function measureMemory(bench: Bench): Promise<MemoryResult> {
  const { plan, pool, server, spec } = bench;
  const prime = Math.min(500, Math.ceil(plan.connections / 10));
  await pool.open(prime, plan.openRate, 30_000);
  await closeStreams(bench);
  const gcMs = await forceFullGc(server, 60_000);
  await settle(bench, 30_000);
  await waitForQuiet(`${spec.label} memory`);
  const baselineKiB = readRssKiB(server.pid);
  const baselineHeap = (await serverState(bench)).heapUsed;
  log(
    `${spec.label} memory: baseline RSS ${(baselineKiB / 1024).toFixed(1)} MiB (after a forced full GC, ` +
      `${(gcMs / 1000).toFixed(1)} s); opening ${plan.connections} streams`,
  );
  const points: MemoryPoint[] = [{ streams: 0, rssKiB: baselineKiB }];
  const connect = new Histogram();
  const failures: Record<string, number> = {};
  let failed = 0;
  let openMs = 0;
  for (let segment = 0; segment < MEMORY_SEGMENTS; segment++) {
    const count =
      Math.floor((plan.connections * (segment + 1)) / MEMORY_SEGMENTS) -
      Math.floor((plan.connections * segment) / MEMORY_SEGMENTS);
    const opened = await pool.open(count, plan.openRate, (count / plan.openRate) * 1000 + 30_000);
    openMs += opened.elapsedMs;
    failed += opened.failed;
    for (const [reason, times] of Object.entries(opened.failures)) failures[reason] = (failures[reason] ?? 0) + times;
    connect.merge(opened.connect.toData());
    await sleep(plan.settleMs);
    points.push({ streams: (await pool.stats()).open, rssKiB: readRssKiB(server.pid) });
  }
  const { connections: counted, heapUsed } = await serverState(bench);
  const last = points.at(-1) ?? { streams: 0, rssKiB: baselineKiB };
  const held = Math.min(last.streams, counted);
  let cleanKiB = 0;
  let cleanStreams = 0;
  let segmentsUsed = 0;
  for (let i = 1; i < points.length; i++) {
    const [before, after] = [points[i - 1], points[i]];
    if (!before || !after || after.rssKiB < before.rssKiB) continue;
    cleanKiB += after.rssKiB - before.rssKiB;
    cleanStreams += after.streams - before.streams;
    segmentsUsed++;
  }
  log(
    `${spec.label} memory: ${held} held (server counts ${counted}), ${failed} failed ${JSON.stringify(failures)}; ` +
      `RSS ${points.map((point) => (point.rssKiB / 1024).toFixed(1)).join(' → ')} MiB`,
  );
  if (segmentsUsed < MEMORY_SEGMENTS) {
    log(
      `warning: ${spec.label}'s RSS shrank during ${MEMORY_SEGMENTS - segmentsUsed} segment(s) (a full GC): left out`,
    );
  }
  await closeStreams(bench);
  return {
    target: plan.connections,
    held,
    failed,
    failures,
    openSeconds: openMs / 1000,
    rampConnect: connect.summary(),
    baselineKiB,
    points,
    loadedKiB: last.rssKiB,
    perStreamKiB: cleanStreams > 0 ? cleanKiB / cleanStreams : NaN,
    segmentsUsed,
    heapPerStreamKiB: held > 0 ? (heapUsed - baselineHeap) / 1024 / held : NaN,
    prime,
  };
}

/** Opens `connectCount` streams at `connectRate`/s on an otherwise idle server. */
export async function measureConnect(bench: Bench): Promise<ConnectResult> {
  const { plan, pool, spec } = bench;
  const opened = await pool.open(
    plan.connectCount,
    plan.connectRate,
    (plan.connectCount / plan.connectRate) * 1000 + 30_000,
  );
  const latency = opened.connect.summary();
  log(
    `${spec.label} connect: ${opened.established} established, p50 ${fmtMs(latency.p50)} ms, p99 ${fmtMs(latency.p99)} ms`,
  );
  await closeStreams(bench);
  return { established: opened.established, failed: opened.failed, failures: opened.failures, latency };
}

/** Opens the fan-out streams and warms the publish path up (JIT) before anything is measured. */
export async function openFanout(bench: Bench): Promise<void> {
  const { plan, pool, publisher } = bench;
  const opened = await pool.open(
    plan.fanoutStreams,
    plan.openRate,
    (plan.fanoutStreams / plan.openRate) * 1000 + 30_000,
  );
  if (opened.failed > 0) {
    log(`warning: ${bench.spec.label}: ${opened.failed} fan-out streams failed ${JSON.stringify(opened.failures)}`);
  }
  await sleep(500);
  await pool.reset();
  const warmup = await publisher.run(20, 1_000);
  await drain(pool, warmup.accepted * opened.established, 3_000);
}

/** Publishes at `rate` for `seconds` to the open streams and counts what arrives, and when. */
export async function sampleDelivery(bench: Bench, load: { rate: number; seconds: number }): Promise<DeliverySample> {
  const { pool, publisher, server } = bench;
  await waitForQuiet(`${bench.spec.label} ${load.rate} ev/s`);
  await pool.reset();
  const streams = (await pool.stats()).open;
  const before = sampleCpu(server.pid);
  const report = await publisher.run(load.rate, load.seconds * 1000);
  const after = sampleCpu(server.pid);
  const client = await pool.stats();
  const expected = report.accepted * streams;
  const stats = await drain(pool, expected, 5_000);
  const serverCpuTotalMs = readCpuMs(server.pid) - before.serverMs;
  return {
    rate: load.rate,
    accepted: report.accepted,
    publishFailures: report.statuses,
    publishMs: report.endedAt - report.startedAt,
    activeMs: Math.max(report.endedAt, stats.lastReceivedAt) - report.startedAt,
    streams,
    expected,
    received: stats.received,
    latency: stats.latency,
    disconnects: stats.disconnects,
    orderErrors: stats.orderErrors,
    serverCpuMs: after.serverMs - before.serverMs,
    serverCpuTotalMs,
    clientCpuMs: client.cpuMs + (after.selfMs - before.selfMs),
    machineCpuMs: after.machineMs - before.machineMs,
    windowMs: after.at - before.at,
  };
}

/** Adds up windows of the same load (the broadcast rounds). */
export function combineSamples(samples: readonly DeliverySample[]): DeliverySample {
  const first = samples[0];
  if (!first) throw new Error('no samples');
  const total: DeliverySample = { ...first, publishFailures: { ...first.publishFailures }, latency: new Histogram() };
  total.latency.merge(first.latency.toData());
  for (const sample of samples.slice(1)) {
    total.accepted += sample.accepted;
    for (const [key, count] of Object.entries(sample.publishFailures)) {
      total.publishFailures[key] = (total.publishFailures[key] ?? 0) + count;
    }
    total.publishMs += sample.publishMs;
    total.activeMs += sample.activeMs;
    total.streams = Math.min(total.streams, sample.streams);
    total.expected += sample.expected;
    total.received += sample.received;
    total.latency.merge(sample.latency.toData());
    total.disconnects += sample.disconnects;
    total.orderErrors += sample.orderErrors;
    total.serverCpuMs += sample.serverCpuMs;
    total.serverCpuTotalMs += sample.serverCpuTotalMs;
    total.clientCpuMs += sample.clientCpuMs;
    total.machineCpuMs += sample.machineCpuMs;
    total.windowMs += sample.windowMs;
  }
  return total;
}

export function toResult(sample: DeliverySample, attempt = 1): DeliveryResult {
  const pct = (ms: number) => (ms / Math.max(1, sample.windowMs)) * 100;
  const serverCpuPct = pct(sample.serverCpuMs);
  const clientCpuPct = pct(sample.clientCpuMs);
  return {
    rate: sample.rate,
    publishedPerSec: (sample.accepted * 1000) / Math.max(1, sample.publishMs),
    accepted: sample.accepted,
    publishFailures: sample.publishFailures,
    streams: sample.streams,
    expected: sample.expected,
    received: sample.received,
    ratio: sample.expected > 0 ? sample.received / sample.expected : NaN,
    deliveriesPerSec: (sample.received * 1000) / Math.max(1, sample.activeMs),
    latency: sample.latency.summary(),
    disconnects: sample.disconnects,
    orderErrors: sample.orderErrors,
    serverCpuPct,
    clientCpuPct,
    otherCpuPct: Math.max(0, pct(sample.machineCpuMs) - serverCpuPct - clientCpuPct),
    serverUsPerDelivery: sample.received > 0 ? (sample.serverCpuTotalMs * 1000) / sample.received : NaN,
    attempt,
  };
}

/**
 * A throughput step passes when p99 ≤ 100 ms and every stream got every event exactly once, in
 * order: as many frames as expected, ids strictly increasing on each stream, none dropped.
 */
export function stepOk(step: DeliveryResult): boolean {
  return (
    step.latency.p99 <= THROUGHPUT_P99_LIMIT_MS && step.ratio === 1 && step.orderErrors === 0 && step.disconnects === 0
  );
}

/**
 * One throughput step. The machine may be shared: one transient stall should not end the ramp, so
 * a failed step (without lost streams) is measured once more and the better attempt kept — the
 * same rule for both servers.
 */
export async function measureStep(bench: Bench, rate: number): Promise<DeliveryResult> {
  const seconds = bench.plan.stepSeconds;
  let step = toResult(await sampleDelivery(bench, { rate, seconds }));
  if (!stepOk(step) && step.disconnects === 0) {
    logStep(bench, step, 'over the limit, measuring once more');
    await sleep(1_000);
    const again = toResult(await sampleDelivery(bench, { rate, seconds }), 2);
    logStep(bench, again, '2nd try');
    if (stepOk(again) || again.latency.p99 < step.latency.p99) step = again;
  }
  log(`${bench.spec.label} ${rate} ev/s: ${stepOk(step) ? 'ok' : 'over the limit: end of its ramp'}`);
  return step;
}

function logStep(bench: Bench, step: DeliveryResult, outcome: string): void {
  log(
    `${bench.spec.label} ${step.rate} ev/s → ${fmtInt(step.deliveriesPerSec)} deliveries/s, ` +
      `p99 ${fmtMs(step.latency.p99)} ms, delivered ${fmtPct(step.ratio)}, CPU server ${step.serverCpuPct.toFixed(0)} % / ` +
      `clients ${step.clientCpuPct.toFixed(0)} % / other ${step.otherCpuPct.toFixed(0)} %, ` +
      `${step.serverUsPerDelivery.toFixed(1)} µs server CPU per delivery — ${outcome}`,
  );
}

interface CpuSample {
  at: number;
  serverMs: number;
  machineMs: number;
  selfMs: number;
}

function sampleCpu(pid: number): CpuSample {
  const self = process.cpuUsage();
  return {
    at: nowMs(),
    serverMs: readCpuMs(pid),
    machineMs: readMachineBusyMs(),
    selfMs: (self.user + self.system) / 1000,
  };
}

export function fmtMs(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value < 10 ? value.toFixed(2) : value.toFixed(1);
}

export function fmtInt(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a';
}

export function fmtPct(ratio: number): string {
  return Number.isFinite(ratio) ? `${(ratio * 100).toFixed(2)} %` : 'n/a';
}
