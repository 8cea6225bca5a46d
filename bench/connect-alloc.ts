import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Cleanups,
  OUR_ENTRY,
  ourServerEnv,
  ROOT,
  runCleanups,
  type ServerProcess,
  settleHeap,
  startBenchServer,
} from './processes.js';
import { LoadPool } from './load-pool.js';

/**
 * `npm run compile && npx tsx --conditions=@infinitescribe/source bench/connect-alloc.ts [N]` — what
 * opening a stream costs the server's heap, beside the minimal server: bytes allocated per stream
 * opened (garbage included) and the garbage collections they bring (count, pause per 1,000
 * connects, longest pause), then where ours allocates them, by package or file and by function;
 * then the bytes an open stream keeps, and whose they are.
 *
 * Why: the connect rows of `npm run bench` measure a latency tail that a 2-core machine shared with
 * the load generators moves by 2× from run to run, and a pause of the young-generation collector
 * (which copies every new stream's live objects, twice) is that tail. Bytes allocated per connect
 * are what those pauses grow with, and they are the same from run to run, so a change to the
 * connect path shows here without the noise. Each server gets 2,000 streams opened and closed
 * first (JIT and heap warm), then N (5,000 by default) opened at 1,000/s inside the measured
 * window (bench/alloc-sampler.mjs, preloaded into both), by a load generator (load-pool.ts) that
 * signs a token no server saw before for every stream. The streams are closed and N more opened in
 * a second window, which counts only what is alive at its end, after two full collections: what a
 * stream keeps, which every young-generation collection during a burst copies (the pauses above).
 */

const N = Number(process.argv[2] ?? 5_000);
const WARM_UP = 2_000;
const CONNECTS_PER_SECOND = 1_000;
const SAMPLER = join(ROOT, 'bench', 'alloc-sampler.mjs');

interface Report {
  bytes: number;
  byOrigin: [string, number][];
  byFunction: [string, number][];
  gc: { count: number; minor: number; pauseMs: number; longestMs: number };
}

/** Opens `count` streams at CONNECTS_PER_SECOND through the load generator; all must be established. */
async function open(pool: LoadPool, server: ServerProcess, count: number): Promise<void> {
  const result = await pool.open(count, CONNECTS_PER_SECOND, 60_000);
  if (result.established !== count) {
    throw new Error(
      `${result.established} of ${count} streams established (${JSON.stringify(result.failures)}):\n${server.tail()}`,
    );
  }
}

async function closeAll(pool: LoadPool): Promise<void> {
  await pool.closeAll();
  await sleep(1_000);
}

/** Warm-up, then the two measured windows around N connects each; the sampler's reports. */
async function measure(
  server: ServerProcess,
  pool: LoadPool,
  out: string,
): Promise<{ allocated: Report; kept: Report }> {
  await open(pool, server, WARM_UP);
  await closeAll(pool);
  const window = async (beforeEnd: () => Promise<void>): Promise<Report> => {
    process.kill(server.pid, 'SIGURG');
    await open(pool, server, N);
    await beforeEnd();
    process.kill(server.pid, 'SIGURG');
    const report = await takeReport(server, out);
    await closeAll(pool);
    return report;
  };
  const allocated = await window(async () => {});
  // The burst's garbage collected: what the window still holds is what the open streams keep.
  const kept = await window(() => settleHeap(server.pid));
  return { allocated, kept };
}

/** Waits for the sampler's report of the window just ended, reads it and removes it for the next. */
async function takeReport(server: ServerProcess, out: string): Promise<Report> {
  for (let waited = 0; !existsSync(out); waited += 100) {
    if (waited > 30_000) throw new Error(`no sampler report from ${server.pid}:\n${server.tail()}`);
    await sleep(100);
  }
  const report = JSON.parse(readFileSync(out, 'utf8')) as Report | { error: string };
  rmSync(out);
  if ('error' in report) throw new Error(`sampler: ${report.error}`);
  return report;
}

/** One server with the sampler preloaded, and one load generator signing tokens with `secret`. */
async function run(
  entry: string,
  streamPath: string,
  secret: string,
  env: (dataDir: string) => Record<string, string>,
): Promise<{ allocated: Report; kept: Report }> {
  const cleanups: Cleanups = [];
  try {
    let out = '';
    const server = await startBenchServer({
      entry,
      env: ({ dataDir }) => {
        out = join(dataDir, 'alloc.json');
        return { ...env(dataDir), ALLOC_SAMPLER_OUT: out };
      },
      cleanups,
      nodeArgs: [`--import=${SAMPLER}`],
    });
    const pool = await LoadPool.start({ processes: 1, baseUrl: server.baseUrl, streamPath, secret });
    cleanups.push(() => pool.stop());
    return await measure(server, pool, out);
  } finally {
    await runCleanups(cleanups);
  }
}

const kib = (bytes: number) => (bytes / 1024).toFixed(2);
const ratio = (ours: number, minimal: number) => (minimal > 0 ? `${(ours / minimal).toFixed(2)}×` : 'n/a');

async function main(): Promise<void> {
  const secret = randomBytes(24).toString('hex');
  const minimalRun = await run('bench/minimal-server.ts', '/stream?topics=broadcast', secret, () => ({ PORT: '0' }));
  const oursRun = await run(OUR_ENTRY, '/api/sse/stream?topics=broadcast', secret, (dataDir) =>
    ourServerEnv({ secret, dataDir }),
  );
  const [minimal, ours] = [minimalRun.allocated, oursRun.allocated];
  const [minimalKept, oursKept] = [minimalRun.kept, oursRun.kept];
  const perThousand = (value: number) => ((value * 1_000) / N).toFixed(1);
  const rows = [
    [
      'allocated per stream opened (KiB)',
      kib(minimal.bytes / N),
      kib(ours.bytes / N),
      ratio(ours.bytes, minimal.bytes),
    ],
    [
      'GC runs in the window (young generation)',
      `${minimal.gc.count} (${minimal.gc.minor})`,
      `${ours.gc.count} (${ours.gc.minor})`,
      '',
    ],
    [
      'GC pause per 1,000 connects (ms)',
      perThousand(minimal.gc.pauseMs),
      perThousand(ours.gc.pauseMs),
      ratio(ours.gc.pauseMs, minimal.gc.pauseMs),
    ],
    [
      'longest GC pause (ms)',
      minimal.gc.longestMs.toFixed(1),
      ours.gc.longestMs.toFixed(1),
      ratio(ours.gc.longestMs, minimal.gc.longestMs),
    ],
    [
      'kept per open stream (KiB, second window)',
      kib(minimalKept.bytes / N),
      kib(oursKept.bytes / N),
      ratio(oursKept.bytes, minimalKept.bytes),
    ],
  ];
  const table = (head: string[], body: string[][]) =>
    [
      `| ${head.join(' | ')} |`,
      `| ${head.map(() => '---').join(' | ')} |`,
      ...body.map((row) => `| ${row.join(' | ')} |`),
    ].join('\n');
  /** A section of ours' bytes: by package or file (top 15), then by function (top 20). */
  const breakdown = (heading: string, report: Report) => {
    const row = ([name, bytes]: [string, number]) => [
      name,
      kib(bytes / N),
      `${((100 * bytes) / report.bytes).toFixed(1)} %`,
    ];
    return [
      `### Ours: ${heading}`,
      '',
      table(['code', 'KiB per stream', 'share'], report.byOrigin.slice(0, 15).map(row)),
      '',
      table(['function', 'KiB per stream', 'share'], report.byFunction.slice(0, 20).map(row)),
    ].join('\n');
  };
  console.log(
    [
      `## Heap cost of opening a stream (node ${process.version}; ${N.toLocaleString('en')} streams at ${CONNECTS_PER_SECOND.toLocaleString('en')}/s after ${WARM_UP.toLocaleString('en')} opened and closed)`,
      '',
      table(['', 'minimal', 'ours', 'ours ÷ minimal'], rows),
      '',
      breakdown('where a stream opened allocates', ours),
      '',
      breakdown('what an open stream keeps', oursKept),
    ].join('\n'),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
