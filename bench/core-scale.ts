import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LatencySummary } from './histogram.js';
import { nowMs } from './histogram.js';
import { LoadPool } from './load-pool.js';
import { nchanModule, startNchan } from './nchan-server.js';
import {
  type Bench,
  closeStreams,
  type DeliveryResult,
  fmtInt,
  fmtMs,
  fmtPct,
  log,
  measureStep,
  type Plan,
  quiet,
  sampleDelivery,
  serverState,
  type ServerKind,
  stepOk,
  toResult,
  waitForQuiet,
} from './phases.js';
import {
  type Cleanups,
  OUR_ENTRY,
  ourServerEnv,
  readCpuMs,
  readRssKiB,
  runCleanups,
  type ServerProcess,
  settleHeap,
  startBenchServer,
} from './processes.js';
import { Publisher, publisherToken } from './publisher.js';
import { fanoutThroughput } from './report.js';

/**
 * `npm run bench` (scenario `core`): the targets of issue 15 on three servers in one run —
 * ours, the minimal node:http server (the floor Node sets) and Nchan (nginx, C) when installed.
 * Per server, at each size: open the streams at 2,000/s (connect latency), hold them (RSS per
 * stream on a settled heap, at the largest size), publish at a steady rate (p99), then ramp the
 * rate to saturation (fan-out). See bench/README.md.
 */

export interface ScalePlan {
  name: string;
  /** Streams opened and closed first on each server (JIT warm-up), not measured. */
  primeStreams: number;
  connectRate: number;
  /** Sizes whose connect latency is reported. */
  connectSizes: number[];
  /**
   * Openings measured at each of `connectSizes`, one after the other (all but the last closed
   * again): the rows give the median round. One burst's p99 is the 1 % worst connects of a second
   * or less, so whether a young-generation collection falls into it moves it by 2× from one burst
   * to the next; the median of several, all of them listed, is what a target can be judged on.
   */
  connectRounds: number;
  /** The size at which RSS per stream is measured. */
  memoryStreams: number;
  /** Steady publishing windows: streams, events/s. */
  latency: { streams: number; rate: number }[];
  latencySeconds: number;
  /** Sizes at which the rate ramps to saturation. */
  fanout: number[];
  steps: number[];
  stepSeconds: number;
  /** Only these servers (`--servers=ours,minimal`); all when absent. */
  servers?: ServerKind[];
  /**
   * All servers running at once and measured size by size in turn (connect-only runs), instead of
   * one server's whole run after the other's.
   */
  interleaved?: boolean;
}

export const CORE_SCALE: ScalePlan = {
  name: 'core',
  primeStreams: 500,
  connectRate: 2_000,
  connectSizes: [1_000, 10_000],
  connectRounds: 5,
  memoryStreams: 10_000,
  latency: [
    { streams: 1_000, rate: 10 },
    { streams: 5_000, rate: 10 },
    { streams: 10_000, rate: 2 },
  ],
  latencySeconds: 10,
  fanout: [1_000, 5_000],
  // Geometric, about ×1.25 each; a server's ramp ends at its first step over the p99 limit.
  steps: [20, 25, 32, 40, 50, 63, 80, 100, 125, 160, 200, 250, 320, 400, 500, 630, 800],
  stepSeconds: 4,
};

/** A smoke run: every size is `streams`, short windows. Its numbers are not the acceptance ones. */
export function smokePlan(streams: number): ScalePlan {
  return {
    name: `smoke (${streams} streams)`,
    primeStreams: Math.min(200, streams),
    connectRate: 2_000,
    connectSizes: [streams],
    connectRounds: 1,
    memoryStreams: streams,
    latency: [{ streams, rate: 10 }],
    latencySeconds: 3,
    fanout: [streams],
    steps: [20, 40, 80, 160],
    stepSeconds: 2,
  };
}

/**
 * `--only=connect`: the connect rows (and the memory phase before the largest one, which leaves
 * the heap and the token cache as a full run does), without the latency and fan-out phases, to
 * profile the setup path quickly.
 */
export function connectOnly(plan: ScalePlan): ScalePlan {
  return { ...plan, name: `${plan.name}, connect only`, latency: [], fanout: [], interleaved: true };
}

/** `--servers=ours,minimal` → the kinds, checked. */
export function parseServers(list: string): ServerKind[] {
  const kinds = list.split(',').map((kind) => kind.trim());
  for (const kind of kinds) {
    if (!SPECS.some((spec) => spec.kind === kind)) throw new Error(`unknown server ${kind} in --servers`);
  }
  return kinds as ServerKind[];
}

const GENERATORS = 2;
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));

interface Spec {
  kind: ServerKind;
  label: string;
  streamPath: string;
  publishPath: string;
  start: (secret: string, cleanups: Cleanups) => Promise<ServerProcess>;
  publishHeaders?: Record<string, string>;
  establishedOnHead?: boolean;
}

const SPECS: Spec[] = [
  {
    kind: 'minimal',
    label: 'minimal node:http',
    streamPath: '/stream?topics=broadcast',
    publishPath: '/publish',
    start: (_secret, cleanups) =>
      startBenchServer({ entry: 'bench/minimal-server.ts', env: () => ({ PORT: '0' }), cleanups }),
  },
  {
    kind: 'ours',
    label: 'ours',
    streamPath: '/api/sse/stream?topics=broadcast',
    publishPath: '/api/events',
    start: (secret, cleanups) =>
      startBenchServer({ entry: OUR_ENTRY, env: ({ dataDir }) => ourServerEnv({ secret, dataDir }), cleanups }),
  },
  {
    kind: 'nchan',
    label: 'Nchan',
    streamPath: '/stream',
    publishPath: '/publish',
    start: (_secret, cleanups) => startNchan(cleanups),
    // Nchan sends the body as the message's data; the event name comes from this header.
    publishHeaders: { 'x-eventsource-event': 'notification' },
    // It sends nothing when a subscriber arrives: established = its 200 head.
    establishedOnHead: true,
  },
];

interface ConnectRow {
  streams: number;
  established: number;
  failed: number;
  latency: LatencySummary;
  /**
   * The server's CPU time over the opening, per stream opened (µs): what the p99 depends on, since
   * at 2,000 connects/s a server spending 400 µs on each is 80 % busy, and a pause of a few
   * milliseconds then takes several times as long to drain. NaN for Nchan (its workers are other
   * processes than the one started).
   */
  cpuUsPerConnect: number;
}

/** The rounds of one size's connect measurement, and the median round the table reports. */
interface ConnectRounds {
  streams: number;
  rounds: ConnectRow[];
  median: ConnectRow;
}

interface ScaleResult {
  kind: ServerKind;
  label: string;
  connect: ConnectRounds[];
  memory?: {
    streams: number;
    baselineKiB: number;
    halfKiB: number;
    loadedKiB: number;
    perStreamKiB: number;
    fromZeroKiB: number;
    heapPerStreamKiB: number;
  };
  latency: { streams: number; rate: number; result: DeliveryResult }[];
  fanout: { streams: number; steps: DeliveryResult[]; throughput: number; saturation: number }[];
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits (bounded) until RSS has been steady (±1 MiB) for 3 s. */
async function steadyRss(pid: number, maxWaitMs: number): Promise<number> {
  const until = nowMs() + maxWaitMs;
  const history: number[] = [];
  for (;;) {
    history.push(readRssKiB(pid));
    if (history.length > 3 && Math.abs((history.at(-1) ?? 0) - (history.at(-4) ?? 0)) < 1024) break;
    if (nowMs() >= until) break;
    await sleep(1_000);
  }
  return history.at(-1) ?? 0;
}

async function settledRss(bench: Bench): Promise<number> {
  if (bench.spec.kind !== 'nchan') await settleHeap(bench.server.pid);
  return steadyRss(bench.server.pid, 20_000);
}

async function openStreams(bench: Bench, count: number, rate: number): Promise<ConnectRow> {
  const pid = bench.spec.kind === 'nchan' ? undefined : bench.server.pid;
  const cpuBefore = pid === undefined ? NaN : readCpuMs(pid);
  const opened = await bench.pool.open(count, rate, (count / rate) * 1000 + 30_000);
  const cpuMs = pid === undefined ? NaN : readCpuMs(pid) - cpuBefore;
  const cpuUsPerConnect = (cpuMs * 1000) / Math.max(1, opened.established);
  const latency = opened.connect.summary();
  log(
    `${bench.spec.label}: ${count} streams at ${rate}/s → ${opened.established} established, ${opened.failed} failed ` +
      `${opened.failed > 0 ? JSON.stringify(opened.failures) : ''}; connect p50 ${fmtMs(latency.p50)} ms, p99 ${fmtMs(latency.p99)} ms` +
      (pid === undefined ? '' : `; server CPU ${cpuUsPerConnect.toFixed(0)} µs per connect`),
  );
  return { streams: count, established: opened.established, failed: opened.failed, latency, cpuUsPerConnect };
}

/**
 * RSS per stream on a settled heap, as the slope between `size / 2` and `size` streams: both points
 * after two full GCs and a steady RSS. Not from zero: a collected heap keeps the pages it freed
 * (our start-up garbage is hundreds of MiB), and the first streams reuse them without growing RSS;
 * the first half uses that slack up, the second half's growth is what streams cost. The streams are
 * closed afterwards; the connect measurement of this size opens them again.
 *
 * The slack can outlast the first half (5,000 streams take ~45 MiB of hundreds freed), and then
 * the slope says less than streams cost: 0.27 KiB per stream once, while the V8 heap grew 8.7. The
 * V8 heap row beside it is the check. RSS less V8's committed heap does not fix it: pages V8
 * decommits stay resident for a while, so that difference undercounted too (3.6 KiB per stream,
 * below the heap's own 8.7, on 2026-12-03).
 */
async function measureMemory(bench: Bench, size: number, rate: number): Promise<NonNullable<ScaleResult['memory']>> {
  const half = Math.floor(size / 2);
  const baselineKiB = await settledRss(bench);
  await openStreams(bench, half, rate);
  await sleep(2_000);
  const halfKiB = await settledRss(bench);
  const halfState = await serverState(bench);
  await openStreams(bench, size - half, rate);
  await sleep(2_000);
  const loadedKiB = await settledRss(bench);
  const state = await serverState(bench);
  const held = state.connections;
  const added = held - halfState.connections;
  const memory = {
    streams: held,
    baselineKiB,
    halfKiB,
    loadedKiB,
    perStreamKiB: (loadedKiB - halfKiB) / added,
    fromZeroKiB: (loadedKiB - baselineKiB) / held,
    heapPerStreamKiB: (state.heapUsed - halfState.heapUsed) / 1024 / added,
  };
  log(
    `${bench.spec.label} memory (settled heap): RSS ${(baselineKiB / 1024).toFixed(1)} → ${(halfKiB / 1024).toFixed(1)} ` +
      `(${halfState.connections} streams) → ${(loadedKiB / 1024).toFixed(1)} MiB (${held}): ` +
      `${memory.perStreamKiB.toFixed(2)} KiB/stream over the second half, ${memory.fromZeroKiB.toFixed(2)} from zero`,
  );
  await closeStreams(bench);
  return memory;
}

async function warmUp(bench: Bench): Promise<void> {
  await bench.pool.reset();
  await bench.publisher.run(20, 1_000);
  await sleep(1_000);
}

/** The sizes a plan measures, smallest first. */
function planSizes(plan: ScalePlan): number[] {
  return [
    ...new Set([
      ...plan.connectSizes,
      plan.memoryStreams,
      ...plan.latency.map((entry) => entry.streams),
      ...plan.fanout,
    ]),
  ]
    .filter((size) => size > 0)
    .sort((a, b) => a - b);
}

/** Opens and closes the plan's warm-up streams (JIT), not measured. */
async function prime(bench: Bench, plan: ScalePlan): Promise<ScaleResult> {
  await openStreams(bench, plan.primeStreams, plan.connectRate);
  await closeStreams(bench);
  return { kind: bench.spec.kind, label: bench.spec.label, connect: [], latency: [], fanout: [] };
}

/** Everything the plan measures at `size` on one server, added to its `result`. */
async function measureSize(bench: Bench, plan: ScalePlan, size: number, result: ScaleResult): Promise<void> {
  if (size === plan.memoryStreams) result.memory = await measureMemory(bench, size, plan.connectRate);
  const reported = plan.connectSizes.includes(size);
  const connect = await measureConnects(bench, plan, size, reported ? plan.connectRounds : 1);
  if (reported) result.connect.push(connect);
  const latency = plan.latency.find((entry) => entry.streams === size);
  if (latency !== undefined || plan.fanout.includes(size)) await warmUp(bench);
  if (latency !== undefined) {
    const delivery = toResult(await sampleDelivery(bench, { rate: latency.rate, seconds: plan.latencySeconds }));
    log(
      `${bench.spec.label} ${latency.rate} ev/s × ${size}: p50 ${fmtMs(delivery.latency.p50)} ms, p99 ` +
        `${fmtMs(delivery.latency.p99)} ms, delivered ${fmtPct(delivery.ratio)}, order errors ${delivery.orderErrors}`,
    );
    result.latency.push({ streams: size, rate: latency.rate, result: delivery });
  }
  if (plan.fanout.includes(size)) {
    const steps: DeliveryResult[] = [];
    // The same deliveries/s at every size: at 5,000 streams the ramp starts at 4 events/s, not 20
    // (20 × 5,000 = 100,000 deliveries/s, past what the machine carries: a ramp of one failed step).
    const scale = Math.min(1, 1_000 / size);
    for (const rate of plan.steps.map((step) => Math.round(step * scale * 10) / 10)) {
      const step = await measureStep(bench, rate);
      steps.push(step);
      if (!stepOk(step)) break;
    }
    const throughput = fanoutThroughput(steps);
    const saturation = Math.max(0, ...steps.map((step) => step.deliveriesPerSec));
    log(`${bench.spec.label} fan-out × ${size}: ${fmtInt(throughput)} deliveries/s (saturation ${fmtInt(saturation)})`);
    result.fanout.push({ streams: size, steps, throughput, saturation });
  }
  await closeStreams(bench);
}

/** `count` openings of `size` streams, each after a quiet machine; the last stays open. */
async function measureConnects(bench: Bench, plan: ScalePlan, size: number, count: number): Promise<ConnectRounds> {
  const rounds: ConnectRow[] = [];
  for (let round = 1; round <= count; round++) {
    if (round > 1) await closeStreams(bench);
    await waitForQuiet(`${bench.spec.label} connect ${size}${count > 1 ? `, round ${round} of ${count}` : ''}`);
    rounds.push(await openStreams(bench, size, plan.connectRate));
  }
  // The round of median p99 (the lower middle one of an even count), with its own p50 and CPU.
  const byP99 = [...rounds].sort((a, b) => a.latency.p99 - b.latency.p99);
  const median = byP99[Math.floor((byP99.length - 1) / 2)] as ConnectRow;
  return { streams: size, rounds, median };
}

function checkFdLimit(plan: ScalePlan): void {
  const largest = Math.max(
    ...plan.connectSizes,
    plan.memoryStreams,
    ...plan.fanout,
    ...plan.latency.map((l) => l.streams),
  );
  const soft = Number(execFileSync('sh', ['-c', 'ulimit -n']).toString().trim());
  // A server holds `largest` sockets; a generator holds its share. Children inherit this limit.
  if (Number.isFinite(soft) && soft < largest + 1_000) {
    throw new Error(
      `ulimit -n is ${soft}: raise it above ${largest + 1_000} (e.g. ulimit -n 65536) before the benchmark`,
    );
  }
  log(
    `ulimit -n ${soft}: enough for ${largest} streams per server (${Math.ceil(largest / GENERATORS)} per load generator)`,
  );
}

export async function runCoreScale(plan: ScalePlan): Promise<void> {
  const startedAt = nowMs();
  log(`scenario ${plan.name}; node ${process.version}; ${cpus().length} CPUs`);
  checkFdLimit(plan);
  const chosen = SPECS.filter((spec) => plan.servers === undefined || plan.servers.includes(spec.kind));
  const specs = chosen.filter((spec) => spec.kind !== 'nchan' || nchanModule() !== undefined);
  if (specs.length < chosen.length) log('warning: nginx with the Nchan module is not installed: Nchan left out');
  const results: ScaleResult[] = [];
  if (plan.interleaved === true) {
    // Every server up at once (the idle ones hold no stream), measured size by size in turn: each
    // ratio compares measurements seconds apart, not minutes, on a machine whose speed drifts.
    const cleanups: Cleanups = [];
    try {
      const benches: Bench[] = [];
      for (const spec of specs) benches.push(await startBench(spec, plan, cleanups));
      const measured: { bench: Bench; result: ScaleResult }[] = [];
      for (const bench of benches) measured.push({ bench, result: await prime(bench, plan) });
      for (const size of planSizes(plan)) {
        for (const { bench, result } of measured) {
          await withServerTail(bench, () => measureSize(bench, plan, size, result));
        }
      }
      results.push(...measured.map(({ result }) => result));
    } finally {
      await runCleanups(cleanups);
    }
  } else {
    for (const spec of specs) {
      const cleanups: Cleanups = [];
      try {
        const bench = await startBench(spec, plan, cleanups);
        await withServerTail(bench, async () => {
          const result = await prime(bench, plan);
          for (const size of planSizes(plan)) await measureSize(bench, plan, size, result);
          results.push(result);
        });
      } finally {
        // One server at a time: the others are not even running while one is measured.
        await runCleanups(cleanups);
      }
    }
  }
  await report(plan, results, (nowMs() - startedAt) / 60_000);
}

/** Runs `measure`; if it throws, prints the server's last lines first. */
async function withServerTail(bench: Bench, measure: () => Promise<void>): Promise<void> {
  try {
    await measure();
  } catch (error) {
    console.error(`${bench.spec.label} output (last lines):\n${bench.server.tail()}`);
    throw error;
  }
}

/** Starts a server with its load generators and publisher; stopping them is registered in `cleanups`. */
async function startBench(spec: Spec, plan: ScalePlan, cleanups: Cleanups): Promise<Bench> {
  const secret = randomBytes(32).toString('hex');
  const server = await spec.start(secret, cleanups);
  log(`${spec.label}: pid ${server.pid} at ${server.baseUrl}`);
  const pool = await LoadPool.start({
    processes: GENERATORS,
    baseUrl: server.baseUrl,
    streamPath: spec.streamPath,
    secret,
    ...(spec.establishedOnHead ? { establishedOnHead: true } : {}),
  });
  cleanups.push(() => pool.stop());
  const publisher = new Publisher(server.baseUrl, {
    path: spec.publishPath,
    token: await publisherToken(secret),
    ...(spec.publishHeaders ? { headers: spec.publishHeaders } : {}),
  });
  cleanups.push(async () => publisher.close());
  const benchPlan: Plan = {
    name: plan.name,
    connections: plan.memoryStreams,
    openRate: plan.connectRate,
    connectCount: plan.connectSizes[0] ?? 0,
    connectRate: plan.connectRate,
    fanoutStreams: plan.fanout[0] ?? 0,
    broadcastRate: 10,
    broadcastSeconds: plan.latencySeconds,
    broadcastRoundSeconds: plan.latencySeconds,
    steps: plan.steps,
    stepSeconds: plan.stepSeconds,
    settleMs: 2_000,
  };
  return {
    spec: {
      kind: spec.kind,
      label: spec.label,
      entry: '',
      streamPath: spec.streamPath,
      publishPath: spec.publishPath,
      env: () => ({}),
    },
    server,
    pool,
    publisher,
    plan: benchPlan,
  };
}

const ratio = (a: number, b: number) =>
  Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a';

async function report(plan: ScalePlan, results: ScaleResult[], minutes: number): Promise<void> {
  const of = (kind: ServerKind) => results.find((result) => result.kind === kind);
  const ours = of('ours');
  const minimal = of('minimal');
  const nchan = of('nchan');
  const columns = [minimal, ours, nchan];
  const rows: string[][] = [];
  const add = (name: string, value: (r: ScaleResult) => number, format: (v: number) => string, target: string) => {
    const values = columns.map((r) => (r ? value(r) : NaN));
    const [m, o, n] = values as [number, number, number];
    rows.push([name, ...values.map(format), ratio(o, m), ratio(o, n), target]);
  };
  for (const size of plan.connectSizes) {
    const measured = (r: ScaleResult) => r.connect.find((c) => c.streams === size);
    const row = (r: ScaleResult) => measured(r)?.median;
    const rounds = plan.connectRounds > 1 ? `, median of ${plan.connectRounds} rounds` : '';
    add(
      `connect p50, ${fmtInt(size)} streams at ${fmtInt(plan.connectRate)}/s${rounds} (ms)`,
      (r) => row(r)?.latency.p50 ?? NaN,
      fmtMs,
      '',
    );
    add(
      `connect p99, ${fmtInt(size)} streams${rounds} (ms)`,
      (r) => row(r)?.latency.p99 ?? NaN,
      fmtMs,
      '≤ 1.5× minimal',
    );
    if (plan.connectRounds > 1) {
      const roundsOf = (r: ScaleResult | undefined) =>
        (r &&
          measured(r)
            ?.rounds.map((round) => fmtMs(round.latency.p99))
            .join(' / ')) ??
        'n/a';
      rows.push([
        `  connect p99 of each round, ${fmtInt(size)} streams (ms)`,
        ...columns.map(roundsOf),
        '',
        '',
        'info',
      ]);
    }
    add(
      `connect failed, ${fmtInt(size)} streams${plan.connectRounds > 1 ? ' (all rounds)' : ''}`,
      (r) => measured(r)?.rounds.reduce((sum, round) => sum + round.failed, 0) ?? NaN,
      fmtInt,
      '0',
    );
    add(`server CPU per connect, ${fmtInt(size)} streams (µs)`, (r) => row(r)?.cpuUsPerConnect ?? NaN, fmtInt, '');
  }
  for (const size of plan.fanout) {
    const row = (r: ScaleResult) => r.fanout.find((f) => f.streams === size);
    add(
      `fan-out deliveries/s, ${fmtInt(size)} streams (p99 ≤ 100 ms, nothing lost)`,
      (r) => row(r)?.throughput ?? NaN,
      fmtInt,
      '≥ Nchan',
    );
    add(
      `  highest deliveries/s of any step, ${fmtInt(size)} streams`,
      (r) => row(r)?.saturation ?? NaN,
      fmtInt,
      'info',
    );
  }
  for (const entry of plan.latency) {
    const row = (r: ScaleResult) => r.latency.find((l) => l.streams === entry.streams && l.rate === entry.rate)?.result;
    add(
      `p99 latency, ${entry.rate} ev/s × ${fmtInt(entry.streams)} streams (ms)`,
      (r) => row(r)?.latency.p99 ?? NaN,
      fmtMs,
      '≤ 1.1× minimal',
    );
    add(`  p50 (ms)`, (r) => row(r)?.latency.p50 ?? NaN, fmtMs, 'info');
    add(`  delivered`, (r) => row(r)?.ratio ?? NaN, fmtPct, '100 %');
  }
  add(
    `RSS per stream at ${fmtInt(plan.memoryStreams)} streams, settled heap (KiB)`,
    (r) => r.memory?.perStreamKiB ?? NaN,
    (v) => (Number.isFinite(v) ? v.toFixed(2) : 'n/a'),
    '≤ 1.3× minimal',
  );
  add(
    `  RSS per stream from zero streams (KiB)`,
    (r) => r.memory?.fromZeroKiB ?? NaN,
    (v) => (Number.isFinite(v) ? v.toFixed(2) : 'n/a'),
    'info',
  );
  add(
    `  V8 heap per stream (KiB)`,
    (r) => r.memory?.heapPerStreamKiB ?? NaN,
    (v) => (Number.isFinite(v) ? v.toFixed(2) : 'n/a'),
    'info',
  );
  const header = ['', 'minimal', 'ours', 'Nchan', 'ours ÷ minimal', 'ours ÷ Nchan', 'target'];
  const table = [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
  const steps = results
    .flatMap((r) =>
      r.fanout.flatMap((f) =>
        f.steps.map(
          (s) =>
            `| ${r.label} | ${fmtInt(f.streams)} | ${s.rate}${s.attempt > 1 ? ' (2nd try)' : ''} | ${fmtInt(s.deliveriesPerSec)} | ` +
            `${fmtMs(s.latency.p50)} | ${fmtMs(s.latency.p99)} | ${fmtPct(s.ratio)} | ${s.disconnects} | ` +
            `${s.serverCpuPct.toFixed(0)} % | ${s.clientCpuPct.toFixed(0)} % | ${s.otherCpuPct.toFixed(0)} % | ${s.serverUsPerDelivery.toFixed(1)} |`,
        ),
      ),
    )
    .join('\n');
  const detail =
    '| server | streams | ev/s | deliveries/s | p50 ms | p99 ms | delivered | disconnects | CPU server | CPU clients | CPU other | server µs/delivery |\n' +
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n' +
    steps;
  const busy = results.some((r) =>
    [...r.latency.map((l) => l.result), ...r.fanout.flatMap((f) => f.steps)].some((s) => s.otherCpuPct > 25),
  );
  const text =
    `## SSE benchmark — scenario ${plan.name}\n\n` +
    `${new Date().toISOString()} · node ${process.version} · ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'} · ` +
    `${plan.interleaved === true ? 'servers up together, measured size by size in turn' : 'servers one after the other'}, ` +
    `load generators (${GENERATORS} per server) and publisher on 127.0.0.1 · ${minutes.toFixed(1)} min · ` +
    `waited ${(quiet.waitedMs / 1000).toFixed(0)} s for quiet${quiet.exhausted ? ' (budget exhausted: some windows ran on a busy machine)' : ''}\n\n` +
    `${table}\n\n` +
    (busy
      ? '**Warning**: other processes used more than 25 % of a core during some windows: latency and throughput are noisy.\n\n'
      : '') +
    `### Fan-out ramps\n\n${detail}\n`;
  console.log(`\n${text}`);
  await mkdir(RESULTS_DIR, { recursive: true });
  await writeFile(join(RESULTS_DIR, 'core-latest.md'), text);
  await writeFile(join(RESULTS_DIR, 'core-latest.json'), JSON.stringify({ plan, results }, null, 2));
  console.log('written to bench/results/core-latest.md (and core-latest.json)');
}
