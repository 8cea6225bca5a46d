import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createScratchDatabase } from '../packages/server/test/helpers/scratch-database.js';
import { nowMs } from './histogram.js';
import { fmtInt, fmtMs, log } from './phases.js';
import {
  type Cleanups,
  forkTs,
  readCpuMs,
  readMachineBusyMs,
  runCleanups,
  startOurServer,
  stopChild,
} from './processes.js';
import { publisherToken } from './publisher.js';
import type { StormCommand, StormResult, StormStats } from './storm-client.js';

/**
 * `npm run bench -- --scenario=storm` — the reconnect storm: N streams (10,000 by default) on
 * instance A of a two-instance cluster (Redis bus + one PostgreSQL store), events flowing; A is
 * killed with SIGKILL, and every client reconnects to B with `Last-Event-ID`, with the client
 * package's own backoff and jitter (bench/storm-client.ts). Measures the time from the kill until
 * 50 / 99 / 100 % of the streams have `stream.resumed {complete: true}`, what was lost or
 * duplicated, refusals, how fast B took the resumes, and the connection attempts the kernel dropped
 * (listen queue overflows). See bench/README.md.
 */

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const STORM_CLIENT = fileURLToPath(new URL('./storm-client.ts', import.meta.url));
const REDIS_URL = 'redis://127.0.0.1:6379';
const STREAM_PATH = '/api/sse/stream?topics=broadcast';
/**
 * Events published on B, on the streams' topic, before, during and after the storm: 5 ev/s, fewer
 * for many streams so that the steady fan-out stays near 10,000 deliveries/s (1 ev/s at 10,000
 * streams) and leaves the 2 cores to the storm itself.
 */
const publishRate = (streams: number) => Math.min(5, Math.max(1, Math.round(10_000 / streams)));
const OPEN_RATE = 1_000;
/** The issue's target: 99 % of the streams resumed within this long after the kill. */
const TARGET_P99_MS = 5_000;
const STORM_TIMEOUT_MS = 120_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The kernel's listen queue counters (TcpExt ListenOverflows / ListenDrops, as `nstat` shows them). */
function listenCounters(): { overflows: number; drops: number } {
  const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
  const names = (lines.find((line) => line.startsWith('TcpExt:')) ?? '').split(/\s+/);
  const values = (lines.filter((line) => line.startsWith('TcpExt:'))[1] ?? '').split(/\s+/);
  const read = (name: string) => Number(values[names.indexOf(name)] ?? 0);
  return { overflows: read('ListenOverflows'), drops: read('ListenDrops') };
}

/** The storm client process and its one-call-at-a-time channel. */
class StormClient {
  private queue: Promise<unknown> = Promise.resolve();
  private constructor(readonly child: ChildProcess) {}

  static start(): StormClient {
    return new StormClient(forkTs(STORM_CLIENT));
  }

  call<T>(command: StormCommand, timeoutMs: number): Promise<T> {
    const run = () =>
      new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`storm client: no reply to ${command.type}`)), timeoutMs);
        const exit = () => reject(new Error('storm client exited'));
        this.child.once('exit', exit);
        this.child.once('message', (reply: { ok: boolean; value?: T; error?: string }) => {
          clearTimeout(timer);
          this.child.off('exit', exit);
          if (reply.ok) resolve(reply.value as T);
          else reject(new Error(`storm client: ${reply.error}`));
        });
        this.child.send(command);
      });
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }
}

/** Publishes at a steady rate on B and keeps the ids it got back (202s). */
class IdPublisher {
  readonly accepted: number[] = [];
  readonly failures: Record<string, number> = {};
  private running = true;
  private done: Promise<void> = Promise.resolve();

  constructor(
    private readonly url: string,
    private readonly token: string,
  ) {}

  start(rate: number): void {
    this.done = (async () => {
      const started = nowMs();
      const pending: Promise<void>[] = [];
      for (let i = 0; this.running; i++) {
        const due = started + (i * 1000) / rate;
        if (due > nowMs()) await sleep(due - nowMs());
        pending.push(this.publishOne());
      }
      await Promise.all(pending);
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }

  private async publishOne(): Promise<void> {
    try {
      const response = await fetch(`${this.url}/api/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          topic: 'broadcast',
          type: 'notification',
          payload: { title: `b${nowMs().toFixed(3)}`, level: 'info' },
        }),
        signal: AbortSignal.timeout(10_000),
      });
      const body = (await response.json()) as { id?: string };
      if (response.status === 202 && body.id !== undefined) this.accepted.push(Number(body.id));
      else this.failures[String(response.status)] = (this.failures[String(response.status)] ?? 0) + 1;
    } catch (error) {
      const name = error instanceof Error ? error.name : 'error';
      this.failures[name] = (this.failures[name] ?? 0) + 1;
    }
  }
}

interface StormReport {
  streams: number;
  established: number;
  timeline: { atMs: number; resumed: number }[];
  resumedMs: { p50: number; p99: number; p100: number; first: number };
  result: StormResult;
  publishes: { rate: number; accepted: number; failures: Record<string, number> };
  listen: { overflows: number; drops: number };
  bCpuMs: number;
  /** CPU of the clients' process over the same span (ms): what paces their reconnections when busy. */
  clientCpuMs: number;
  bResumesPerCpuSec: number;
  resumesPerSec: number;
  otherCpuPct: number;
  minutes: number;
}

/** The time (ms after the kill) by which `fraction` of `n` streams had resumed; NaN if never. */
function timeToFraction(sortedMs: readonly number[], n: number, fraction: number): number {
  const needed = Math.ceil(n * fraction);
  return needed <= sortedMs.length ? (sortedMs[needed - 1] ?? NaN) : NaN;
}

export async function runStorm(options: { streams: number }): Promise<void> {
  const startedAt = nowMs();
  const streams = options.streams;
  const rate = publishRate(streams);
  log(`scenario storm: ${fmtInt(streams)} streams on A, ${rate} ev/s published on B, then SIGKILL A`);
  const cleanups: Cleanups = [];
  const secret = randomBytes(32).toString('hex');
  const prefix = `storm${randomBytes(4).toString('hex')}`;
  try {
    const database = await createScratchDatabase();
    cleanups.push(() => database.drop());
    const env = {
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      DATABASE_URL: database.url,
      MAX_CONNECTIONS_PER_USER: '1000',
    };
    const a = await startOurServer({ secret, env, cleanups });
    log(`A: pid ${a.pid} at ${a.baseUrl}`);
    const b = await startOurServer({ secret, env, cleanups });
    log(`B: pid ${b.pid} at ${b.baseUrl}`);
    const client = StormClient.start();
    cleanups.push(() => stopChild(client.child, 5_000));
    await client.call(
      {
        type: 'init',
        baseUrl: a.baseUrl,
        failoverUrl: b.baseUrl,
        streamPath: STREAM_PATH,
        secret,
        userOffset: 0,
        count: streams,
      },
      120_000,
    );
    const opened = await client.call<{ established: number; failed: number }>(
      { type: 'open', ratePerSec: OPEN_RATE, timeoutMs: 60_000 + (streams / OPEN_RATE) * 1000 },
      180_000,
    );
    log(`A: ${fmtInt(opened.established)} streams established, ${opened.failed} failed`);
    const publisher = new IdPublisher(b.baseUrl, await publisherToken(secret));
    publisher.start(rate);
    // Every stream must hold an id to resume from: wait until each received an event.
    const until = nowMs() + 30_000;
    let stats = await client.call<StormStats>({ type: 'stats' }, 10_000);
    while (stats.withId < opened.established && nowMs() < until) {
      await sleep(200);
      stats = await client.call<StormStats>({ type: 'stats' }, 10_000);
    }
    // No wait for a quiet machine: the event flow keeps it busy on purpose. What else ran is in
    // the report (CPU of everything else during the storm).
    log(`${fmtInt(stats.withId)} streams hold a Last-Event-ID`);
    await sleep(2_000);

    const listenBefore = listenCounters();
    const bCpuBefore = readCpuMs(b.pid);
    const machineBefore = readMachineBusyMs();
    const selfBefore = process.cpuUsage();
    const clientBefore = readCpuMs(client.child.pid ?? 0);
    const killAt = nowMs();
    process.kill(a.pid, 'SIGKILL');
    log('A killed (SIGKILL)');
    const timeline: { atMs: number; resumed: number }[] = [];
    let lastLogged = 0;
    while (nowMs() - killAt < STORM_TIMEOUT_MS) {
      await sleep(100);
      stats = await client.call<StormStats>({ type: 'stats' }, 10_000);
      const atMs = nowMs() - killAt;
      timeline.push({ atMs, resumed: stats.resumedComplete });
      if (atMs - lastLogged >= 2_000) {
        lastLogged = atMs;
        log(`  +${(atMs / 1000).toFixed(1)} s: ${fmtInt(stats.resumedComplete)} resumed, ${fmtInt(stats.open)} open`);
      }
      if (stats.resumedComplete + stats.resumedIncomplete >= stats.withId) break;
    }
    const stormMs = nowMs() - killAt;
    const bCpuMs = readCpuMs(b.pid) - bCpuBefore;
    const machineMs = readMachineBusyMs() - machineBefore;
    const self = process.cpuUsage(selfBefore);
    const clientCpu = readCpuMs(client.child.pid ?? 0) - clientBefore;
    // Events keep flowing a moment after the storm: the live path on B must carry on without loss.
    await sleep(2_000);
    await publisher.stop();
    await sleep(2_000);
    const listenAfter = listenCounters();
    const result = await client.call<StormResult>({ type: 'result', acceptedIds: publisher.accepted }, 60_000);
    const sorted = result.resumedAt.map((at) => at - killAt).sort((x, y) => x - y);
    const first = sorted[0] ?? NaN;
    const p100 = timeToFraction(sorted, stats.withId, 1);
    const lastResume = sorted.at(-1) ?? NaN;
    const report: StormReport = {
      streams,
      established: opened.established,
      timeline,
      resumedMs: {
        p50: timeToFraction(sorted, stats.withId, 0.5),
        p99: timeToFraction(sorted, stats.withId, 0.99),
        p100,
        first,
      },
      result,
      publishes: { rate, accepted: publisher.accepted.length, failures: publisher.failures },
      listen: {
        overflows: listenAfter.overflows - listenBefore.overflows,
        drops: listenAfter.drops - listenBefore.drops,
      },
      bCpuMs,
      clientCpuMs: clientCpu,
      bResumesPerCpuSec: bCpuMs > 0 ? (sorted.length / bCpuMs) * 1000 : NaN,
      resumesPerSec: sorted.length > 1 ? ((sorted.length - 1) / (lastResume - first)) * 1000 : NaN,
      // Everything but B, this orchestrator and the clients (Redis and PostgreSQL included), % of a core.
      otherCpuPct: ((machineMs - bCpuMs - (self.user + self.system) / 1000 - clientCpu) / stormMs) * 100,
      minutes: (nowMs() - startedAt) / 60_000,
    };
    await client.call({ type: 'closeAll' }, 10_000);
    await writeReport(report, prefix);
  } finally {
    await runCleanups(cleanups);
  }
}

function fmtS(ms: number): string {
  return Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : 'never';
}

async function writeReport(run: StormReport, prefix: string): Promise<void> {
  const { result } = run;
  const refusals = Object.entries(result.attempts)
    .filter(([outcome]) => outcome.startsWith('http_'))
    .reduce((sum, [, n]) => sum + n, 0);
  const verdict = (ok: boolean) => (ok ? 'PASS' : 'FAIL');
  const rows = [
    ['Streams on A / holding a Last-Event-ID at the kill', `${fmtInt(run.established)} / ${fmtInt(run.streams)}`, '—'],
    [
      'Kill → 50 % / 99 % / 100 % of streams `stream.resumed {complete: true}`',
      `${fmtS(run.resumedMs.p50)} / ${fmtS(run.resumedMs.p99)} / ${fmtS(run.resumedMs.p100)}`,
      `99 % ≤ ${TARGET_P99_MS / 1000} s: ${verdict(run.resumedMs.p99 <= TARGET_P99_MS)}`,
    ],
    ['Kill → first resume (the clients wait their `retry:` floor first)', fmtS(run.resumedMs.first), '—'],
    [
      'Lost (events accepted by B, not received; summed over streams) / streams with loss',
      `${fmtInt(result.lost)} / ${fmtInt(result.streamsWithLoss)}`,
      `0: ${verdict(result.lost === 0)}`,
    ],
    [
      'Duplicates or out of order; events nobody accepted',
      `${result.duplicates}; ${result.unexpected}`,
      `0: ${verdict(result.duplicates === 0)}`,
    ],
    [
      '`stream.resumed {complete: false}`; `stream.reset`',
      `${result.resumedIncomplete}; ${JSON.stringify(result.resets)}`,
      '0',
    ],
    ['Reconnection attempts by outcome', JSON.stringify(result.attempts), '—'],
    ['Refusals (429 / 503)', fmtInt(refusals), '—'],
    [
      'Kernel: connection attempts dropped (TcpExt ListenOverflows / ListenDrops during the storm)',
      `${fmtInt(run.listen.overflows)} / ${fmtInt(run.listen.drops)}`,
      '0',
    ],
    [
      'B: resumes/s (first → last resume) · resumes per CPU-second of B',
      `${fmtInt(run.resumesPerSec)} · ${fmtInt(run.bResumesPerCpuSec)}`,
      '≥ 1,000 per CPU-second',
    ],
    ['B: CPU during the storm', `${fmtInt(run.bCpuMs)} ms`, '—'],
    ['Clients (one process): CPU during the storm', `${fmtInt(run.clientCpuMs)} ms`, '—'],
    [
      'Client delay before the first reconnection: min / mean / max',
      `${fmtMs(result.firstDelayMs.min)} / ${fmtMs(result.firstDelayMs.mean)} / ${fmtMs(result.firstDelayMs.max)} ms`,
      '—',
    ],
    [
      `Events published on B during the run at ${run.publishes.rate} ev/s (202) / failed`,
      `${fmtInt(run.publishes.accepted)} / ${JSON.stringify(run.publishes.failures)}`,
      '—',
    ],
  ];
  const curve = run.timeline
    .filter((_, i) => i % 5 === 4)
    .map((point) => `${(point.atMs / 1000).toFixed(1)} s: ${fmtInt(point.resumed)}`)
    .join(' · ');
  const text =
    `## SSE benchmark — scenario storm\n\n${new Date().toISOString()} · node ${process.version} · ${cpus().length} × ` +
    `${cpus()[0]?.model ?? 'cpu'} · A and B (Redis bus, prefix ${prefix}; one PostgreSQL store) + Redis + PostgreSQL + ` +
    `clients on 127.0.0.1 · ${run.minutes.toFixed(1)} min · CPU of everything else during the storm ` +
    `${run.otherCpuPct.toFixed(0)} % of a core\n\n` +
    `| Measured | Value | Target |\n| --- | --- | --- |\n${rows.map((row) => `| ${row.join(' | ')} |`).join('\n')}\n\n` +
    `Resumed streams after the kill: ${curve}\n`;
  console.log(`\n${text}`);
  await mkdir(RESULTS_DIR, { recursive: true });
  await writeFile(join(RESULTS_DIR, 'storm-latest.md'), text);
  console.log('written to bench/results/storm-latest.md');
}
