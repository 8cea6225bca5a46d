import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Cleanups,
  OUR_ENTRY,
  ourServerEnv,
  ROOT,
  runCleanups,
  type ServerProcess,
  startBenchServer,
} from './processes.js';
import { freshStreamTokens } from './stream-tokens.js';

/**
 * `npm run compile && npx tsx --conditions=@infinitescribe/source bench/connect-alloc.ts [N]` — what
 * opening a stream costs the server's heap, beside the minimal server: bytes allocated per stream
 * opened (garbage included) and the garbage collections they bring (count, pause per 1,000
 * connects, longest pause), then where ours allocates them, by package or file and by function.
 *
 * Why: the connect rows of `npm run bench` measure a latency tail that a 2-core machine shared with
 * the load generators moves by 2× from run to run, and a pause of the young-generation collector
 * (which copies every new stream's live objects, twice) is that tail. Bytes allocated per connect
 * are what those pauses grow with, and they are the same from run to run, so a change to the
 * connect path shows here without the noise. Each server gets 2,000 streams opened and closed
 * first (JIT and heap warm), then N (5,000 by default) opened at 1,000/s inside the measured
 * window (bench/alloc-sampler.mjs, preloaded into both), by tokens no server saw before.
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

/** Opens `count` streams at CONNECTS_PER_SECOND; resolves with their sockets once each has its `connection.established`. */
async function openStreams(server: ServerProcess, path: string, count: number, token: () => string): Promise<Socket[]> {
  const { hostname, port } = new URL(server.baseUrl);
  const sockets: Socket[] = [];
  let established = 0;
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${established} of ${count} streams established in 60 s:\n${server.tail()}`)),
      60_000,
    );
    const openOne = () => {
      const socket = connect({ host: hostname, port: Number(port), noDelay: true });
      sockets.push(socket);
      let head = '';
      const onData = (chunk: Buffer) => {
        head += chunk.toString('latin1');
        const at = head.indexOf('event: connection.established');
        if (at === -1 || head.indexOf('\n\n', at) === -1) return;
        socket.off('data', onData);
        if (++established === count) {
          clearTimeout(timer);
          resolve();
        }
      };
      socket.on('data', onData);
      socket.on('error', (error) => reject(error));
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: Bearer ${token()}\r\n` +
          'Accept: text/event-stream\r\n\r\n',
      );
    };
    const tick = () => {
      const due = Math.min(count, Math.floor(((performance.now() - started) / 1_000) * CONNECTS_PER_SECOND) + 1);
      while (sockets.length < due) openOne();
      if (sockets.length < count) setTimeout(tick, 1);
    };
    tick();
  });
  return sockets;
}

async function closeAll(sockets: Socket[]): Promise<void> {
  for (const socket of sockets) socket.destroy();
  await sleep(1_000);
}

/** Warm-up, then the measured window around N connects; the sampler's report. */
async function measure(server: ServerProcess, path: string, token: () => string, out: string): Promise<Report> {
  await closeAll(await openStreams(server, path, WARM_UP, token));
  process.kill(server.pid, 'SIGURG');
  const sockets = await openStreams(server, path, N, token);
  process.kill(server.pid, 'SIGURG');
  for (let waited = 0; !existsSync(out); waited += 100) {
    if (waited > 30_000) throw new Error(`no sampler report from ${server.pid}:\n${server.tail()}`);
    await sleep(100);
  }
  await closeAll(sockets);
  const report = JSON.parse(readFileSync(out, 'utf8')) as Report | { error: string };
  if ('error' in report) throw new Error(`sampler: ${report.error}`);
  return report;
}

async function run(
  entry: string,
  path: string,
  env: (dataDir: string, out: string) => Record<string, string>,
  token: () => string,
): Promise<Report> {
  const cleanups: Cleanups = [];
  try {
    let out = '';
    const server = await startBenchServer({
      entry,
      env: ({ dataDir }) => {
        out = join(dataDir, 'alloc.json');
        return { ...env(dataDir, out), ALLOC_SAMPLER_OUT: out };
      },
      cleanups,
      nodeArgs: [`--import=${SAMPLER}`],
    });
    return await measure(server, path, token, out);
  } finally {
    await runCleanups(cleanups);
  }
}

const kib = (bytes: number) => (bytes / 1024).toFixed(2);
const ratio = (ours: number, minimal: number) => (minimal > 0 ? `${(ours / minimal).toFixed(2)}×` : 'n/a');

async function main(): Promise<void> {
  const secret = randomBytes(24).toString('hex');
  const minimal = await run(
    'bench/minimal-server.ts',
    '/stream?topics=broadcast',
    () => ({ PORT: '0' }),
    () => '',
  );
  const ours = await run(
    OUR_ENTRY,
    '/api/sse/stream?topics=broadcast',
    (dataDir) => ourServerEnv({ secret, dataDir }),
    freshStreamTokens(secret, 0),
  );
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
  ];
  const table = (head: string[], body: string[][]) =>
    [
      `| ${head.join(' | ')} |`,
      `| ${head.map(() => '---').join(' | ')} |`,
      ...body.map((row) => `| ${row.join(' | ')} |`),
    ].join('\n');
  const share = (bytes: number) => `${((100 * bytes) / ours.bytes).toFixed(1)} %`;
  console.log(
    [
      `## Heap cost of opening a stream (node ${process.version}; ${N.toLocaleString('en')} streams at ${CONNECTS_PER_SECOND.toLocaleString('en')}/s after ${WARM_UP.toLocaleString('en')} opened and closed)`,
      '',
      table(['', 'minimal', 'ours', 'ours ÷ minimal'], rows),
      '',
      '### Ours: where a stream opened allocates',
      '',
      table(
        ['code', 'KiB per stream', 'share'],
        ours.byOrigin.slice(0, 15).map(([origin, bytes]) => [origin, kib(bytes / N), share(bytes)]),
      ),
      '',
      table(
        ['function', 'KiB per stream', 'share'],
        ours.byFunction.slice(0, 20).map(([name, bytes]) => [name, kib(bytes / N), share(bytes)]),
      ),
    ].join('\n'),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
