import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Child processes of the benchmark: every one is tracked and stopped by its own PID, on the
 * normal path (stop()), on errors (try/finally in run.ts) and when this process exits.
 */

const children = new Set<ChildProcess>();

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

function track(child: ChildProcess): ChildProcess {
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

/** A server started as `node --import tsx <entry>` (no npx/tsx wrapper, so the PID is the server's). */
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
}): Promise<ServerProcess> {
  const nodeArgs = ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${options.diagnosticDir}`, '--import', 'tsx'];
  const child = track(
    spawn(process.execPath, [...nodeArgs, options.entry], {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const lines: string[] = [];
  const tail = () => lines.join('\n');
  const remember = (chunk: Buffer) => {
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

/** Forks a TypeScript module with an IPC channel (and `gc()` exposed, for the load generator). */
export function forkTs(file: string): ChildProcess {
  return track(
    fork(file, [], { execArgv: ['--import', 'tsx', '--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
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
