import { fork, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Child processes of the benchmark: every one is tracked and stopped by its own PID, on the
 * normal path (stop()), on errors (try/finally in run.ts) and when this process exits.
 */

const children = new Set<ChildProcess>();

/**
 * `BENCH_CPU_PROF_DIR=<dir>`: servers and forked children run with `--cpu-prof` and write a
 * `.cpuprofile` there when they exit (the servers and load generators exit cleanly on SIGTERM), to
 * find where the time of a run goes (open the files in Chrome DevTools' Performance panel).
 */
const CPU_PROF_DIR = process.env['BENCH_CPU_PROF_DIR'];
const profileArgs = (): string[] =>
  CPU_PROF_DIR === undefined || CPU_PROF_DIR === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`];

/**
 * `BENCH_NODE_OPTIONS="--trace-gc ..."`: extra Node/V8 flags for every Node server of a run (ours
 * and the minimal one alike, so a comparison stays fair), e.g. to see GC pauses in their output
 * (`BENCH_SERVER_LOG_DIR` keeps it). Load generators and the publisher do not get them.
 */
const EXTRA_NODE_ARGS = (process.env['BENCH_NODE_OPTIONS'] ?? '').split(/\s+/).filter((arg) => arg !== '');

/**
 * V8 flags every Node server of the benchmark runs with, ours and the minimal one alike: those the
 * shipped image runs with (Dockerfile, docs/deploying.md "V8 flags"). `--no-memory-reducer`: after
 * the streams of one phase close, V8's memory reducer shrinks the heap's limits to what is left, and
 * the next burst of connects then pays a 40 ms mark-compact at every step of the heap's regrowth.
 * `--initial-old-space-size=256`: V8 starts the old generation's limit from what start-up left
 * alive, and a fresh server's first connect burst then pays a full mark-compact as it grows past it.
 * `--max-semi-space-size=16`: V8 grows the young generation to 64 MiB per semi-space under a connect
 * burst, and each scavenge then copies what the thousands of streams opened since the last one keep:
 * pauses of 40–140 ms at 10,000 streams; at 16 MiB they stay near 15 ms.
 */
export const SERVER_NODE_FLAGS = ['--no-memory-reducer', '--initial-old-space-size=256', '--max-semi-space-size=16'];

/** `BENCH_SERVER_LOG_DIR=<dir>`: every server's stdout and stderr are also appended to `<dir>/<pid>.log`. */
const SERVER_LOG_DIR = process.env['BENCH_SERVER_LOG_DIR'];

/** A preload for {@link settleHeap}: `global.gc()` twice (the second frees what finalizers of the first let go). */
const GC_ON_SIGWINCH =
  'data:text/javascript,if(typeof globalThis.gc==="function")process.on("SIGWINCH",()=>{globalThis.gc();globalThis.gc()})';

/**
 * Collects a server's garbage (see {@link GC_ON_SIGWINCH}), so RSS is measured on a settled heap:
 * without it our server's start-up garbage (PGlite's) is freed at an unpredictable moment.
 */
export async function settleHeap(pid: number): Promise<void> {
  process.kill(pid, 'SIGWINCH');
  await new Promise((resolve) => setTimeout(resolve, 1_500));
}

/** Spawns a tracked child (stopped with the others on exit) with its output piped. */
export function spawnTracked(command: string, args: string[], cwd: string): ChildProcess {
  return track(spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] }));
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

process.on('exit', () => {
  for (const child of children) if (isRunning(child) && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    console.error(`\nbench: ${signal}, stopping child processes`);
    process.exit(130);
  });
}

/** Stops `child` (by its PID) with the others if this process exits before it does; for children spawned elsewhere. */
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Sends SIGTERM to the child's PID, then SIGKILL after `graceMs`; resolves once it has exited. */
export async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (!isRunning(child) || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (isRunning(child) && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

/** A server started as `node <entry>` (`--import tsx` for a .ts entry; no npx/tsx wrapper, so the PID is the server's). */
export interface ServerProcess {
  pid: number;
  /** Where the server writes a heap snapshot on SIGUSR2 (see {@link forceFullGc}). */
  diagnosticDir: string;
  baseUrl: string;
  /** The last lines the server wrote (stdout and stderr), for error reports. */
  tail: () => string;
  stop: () => Promise<void>;
}

/**
 * Starts a server and waits for its `READY <url>` line. It runs with
 * `--heapsnapshot-signal=SIGUSR2`: taking a heap snapshot forces a full, memory-reducing GC, the
 * only way to get one from outside the process (used once, before the memory baseline).
 */
export async function startServer(options: {
  entry: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  diagnosticDir: string;
  timeoutMs: number;
  /** More Node flags for this server alone (an instrument's `--import`). */
  nodeArgs?: readonly string[];
}): Promise<ServerProcess> {
  const nodeArgs = [
    '--heapsnapshot-signal=SIGUSR2',
    // settleHeap(): SIGWINCH (ignored by default, unused by the servers) runs two full GCs.
    '--expose-gc',
    `--import=${GC_ON_SIGWINCH}`,
    `--diagnostic-dir=${options.diagnosticDir}`,
    ...profileArgs(),
    ...SERVER_NODE_FLAGS,
    ...EXTRA_NODE_ARGS,
    ...(options.nodeArgs ?? []),
    ...(options.entry.endsWith('.ts') ? TS_SOURCE_ARGS : []),
  ];
  const child = track(
    spawn(process.execPath, [...nodeArgs, options.entry], {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const lines: string[] = [];
  const tail = () => lines.join('\n');
  const logFile =
    SERVER_LOG_DIR !== undefined && SERVER_LOG_DIR !== '' && child.pid !== undefined
      ? join(SERVER_LOG_DIR, `${child.pid}.log`)
      : undefined;
  const remember = (chunk: Buffer) => {
    if (logFile !== undefined) appendFileSync(logFile, chunk);
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') lines.push(line);
    if (lines.length > 40) lines.splice(0, lines.length - 40);
  };
  child.stderr?.on('data', remember);
  const baseUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${options.entry} did not print READY in time:\n${tail()}`)),
      options.timeoutMs,
    );
    child.stdout?.on('data', (chunk: Buffer) => {
      remember(chunk);
      const match = /READY (http:\/\/\S+)/.exec(chunk.toString('utf8'));
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${options.entry} exited (${code ?? signal}) before READY:\n${tail()}`));
    });
  });
  if (child.pid === undefined) throw new Error('server has no pid');
  return { pid: child.pid, diagnosticDir: options.diagnosticDir, baseUrl, tail, stop: () => stopChild(child, 15_000) };
}

/** The repository root: servers run from it, entries are relative to it. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** What a scenario must undo (stop a process, delete a folder), run in reverse order at its end. */
export type Cleanups = (() => Promise<void>)[];

/** Runs the cleanups, last registered first, each one whatever the others did; empties the list. */
export async function runCleanups(cleanups: Cleanups): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) {
    await cleanup().catch((error: unknown) => console.error(error));
  }
}

/** Variables of the caller's environment that would point a server elsewhere than the benchmark says. */
const SCRUBBED_ENV = [
  'REDIS_URL',
  'REDIS_CLUSTER_NODES',
  'DATABASE_URL',
  'JWT_JWKS_URL',
  'INSTANCE_ID',
  'STATIC_DIR',
  'CORS_ORIGINS',
];

/** Our server's entry, started as it is shipped: compiled (`npm run bench` runs `npm run compile` first). */
export const OUR_ENTRY = 'apps/backend/dist/main.js';

/** Runs a TypeScript entry from the sources: tsx, and the workspace packages' source export condition. */
const TS_SOURCE_ARGS = ['--conditions=@infinitescribe/source', '--import', 'tsx'];

/**
 * How every scenario runs our server: production mode, warnings only, the default heartbeat, its
 * own PGlite store, and the limits raised so that they do not refuse the benchmark's own load.
 */
export function ourServerEnv(options: { secret: string; dataDir: string }): Record<string, string> {
  return {
    NODE_ENV: 'production',
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    JWT_SECRET: options.secret,
    DATA_DIR: options.dataDir,
    HEARTBEAT_MS: '15000',
    MAX_CONNECTIONS_PER_USER: '1000',
    MAX_CONNECTIONS_PER_IP: '1000000',
    PUBLISH_RATE_MAX: '1000000',
    PUBLISH_TOPIC_RATE_MAX: '1000000',
  };
}

/**
 * Starts a benchmark server (see {@link startServer}) in fresh temporary folders: a data folder
 * for its store and one for its diagnostics. The caller's environment is kept except the
 * variables that would point it elsewhere; `env` (given the data folder) goes on top. Stopping
 * the server and deleting the folders are registered in `cleanups`.
 */
export async function startBenchServer(options: {
  entry: string;
  env: (dirs: { dataDir: string }) => Record<string, string>;
  cleanups: Cleanups;
  nodeArgs?: readonly string[];
}): Promise<ServerProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), 'sse-bench-'));
  options.cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const diagnosticDir = await mkdtemp(join(tmpdir(), 'sse-bench-diag-'));
  options.cleanups.push(() => rm(diagnosticDir, { recursive: true, force: true }));
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of SCRUBBED_ENV) delete env[name];
  Object.assign(env, options.env({ dataDir }));
  const server = await startServer({
    entry: options.entry,
    cwd: ROOT,
    env,
    diagnosticDir,
    timeoutMs: 60_000,
    ...(options.nodeArgs === undefined ? {} : { nodeArgs: options.nodeArgs }),
  });
  options.cleanups.push(() => server.stop());
  return server;
}

/** Our server ({@link OUR_ENTRY}) with {@link ourServerEnv}, plus `env` (Redis, AI provider, ...). */
export function startOurServer(options: {
  secret: string;
  env?: Record<string, string>;
  cleanups: Cleanups;
}): Promise<ServerProcess> {
  return startBenchServer({
    entry: OUR_ENTRY,
    env: ({ dataDir }) => ({ ...ourServerEnv({ secret: options.secret, dataDir }), ...options.env }),
    cleanups: options.cleanups,
  });
}

/** Forks a TypeScript module with an IPC channel (and `gc()` exposed, for the load generator). */
export function forkTs(file: string): ChildProcess {
  return track(
    fork(file, [], {
      execArgv: [...profileArgs(), ...TS_SOURCE_ARGS, '--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
}

/** Resident set size of a process, KiB (`VmRSS` of /proc/<pid>/status). */
export function readRssKiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match?.[1]) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]);
}

/** CPU time (user + system) a process has used, ms (/proc/<pid>/stat, USER_HZ = 100). */
export function readCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** CPU time the whole machine spent busy (all cores, everything but idle and iowait), ms. */
export function readMachineBusyMs(): number {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((sum, value) => sum + value, 0);
  return (total - (fields[3] ?? 0) - (fields[4] ?? 0)) * 10;
}

/**
 * Forces a full GC in a server started by {@link startServer}: SIGUSR2 makes it write a heap
 * snapshot, which V8 precedes with a full, memory-reducing collection. Waits (bounded) until the
 * file is complete, then deletes it. Returns how long it took, ms.
 */
export async function forceFullGc(server: ServerProcess, timeoutMs: number): Promise<number> {
  const started = Date.now();
  const snapshots = () => readdirSync(server.diagnosticDir).filter((name) => name.endsWith('.heapsnapshot'));
  const before = new Set(snapshots());
  process.kill(server.pid, 'SIGUSR2');
  let lastSize = -1;
  while (Date.now() - started < timeoutMs) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const file = snapshots().find((name) => !before.has(name));
    if (file === undefined) continue;
    const size = statSync(join(server.diagnosticDir, file)).size;
    if (size > 0 && size === lastSize) {
      rmSync(join(server.diagnosticDir, file), { force: true });
      return Date.now() - started;
    }
    lastSize = size;
  }
  throw new Error(`no heap snapshot from pid ${server.pid} within ${timeoutMs} ms`);
}
