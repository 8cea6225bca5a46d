import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnTracked, TS_SOURCE_ARGS, waitForOutput } from './child-process.js';
import { freePort } from './free-port.js';
import { TEST_JWT_SECRET } from './test-app.js';

const MAIN = new URL('../../../../apps/backend/src/main.ts', import.meta.url).pathname;

/** A real server process (src/main.ts), as an operator runs it. */
export interface ServerProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  /** Everything the process wrote, for assertions and for debugging a failure. */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
  /** Sends `signal` to the process by PID and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Starts `src/main.ts` on 127.0.0.1:<free port> with test defaults plus `env`; resolves once it listens. */
export async function startServerProcess(env: Record<string, string> = {}): Promise<ServerProcess> {
  // The embedded store's default folder (./data) is one per checkout, and PGlite takes one process
  // per folder: a server given neither gets a folder of its own, gone once it has exited. A test
  // that restarts a server on the same data passes DATA_DIR itself.
  const ownDataDir =
    env['DATA_DIR'] === undefined && env['DATABASE_URL'] === undefined
      ? mkdtempSync(join(tmpdir(), 'is-server-data-'))
      : undefined;
  const server = spawnTracked(process.execPath, [...TS_SOURCE_ARGS, MAIN], {
    env: {
      ...(ownDataDir === undefined ? {} : { DATA_DIR: ownDataDir }),
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      JWT_SECRET: TEST_JWT_SECRET,
      PUBLISH_RATE_MAX: '1000000',
      PUBLISH_TOPIC_RATE_MAX: '1000000',
      ...env,
    },
  });
  const { child, exited, output } = server;
  if (ownDataDir !== undefined) void exited.then(() => rm(ownDataDir, { recursive: true, force: true }));
  let url: string;
  try {
    url = (await waitForOutput(server, /READY (http:\/\/\S+)/, 60_000))[1] ?? '';
  } catch (error) {
    // Never left running unowned: the caller gets no handle to stop it by.
    await server.stop('SIGKILL');
    throw new Error(`server did not start: ${(error as Error).message}`);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error('no pid');
  return {
    url,
    pid,
    child,
    output,
    exited,
    stop: (signal = 'SIGTERM') => server.stop(signal),
  };
}

/** How long a SIGTERM'd server may take to exit before {@link stopBounded} kills it. */
const STOP_BOUND_MS = 15_000;

/** SIGTERM, then SIGKILL if the server has not exited within {@link STOP_BOUND_MS}. */
export async function stopBounded(server: ServerProcess): Promise<void> {
  const killer = setTimeout(() => void server.stop('SIGKILL'), STOP_BOUND_MS);
  await server.stop('SIGTERM');
  clearTimeout(killer);
}

/**
 * Starts one server per environment, side by side. If any does not start, the ones that did are
 * stopped (none outlives the test unowned) and its error is thrown.
 */
export async function startServerProcesses(envs: readonly Record<string, string>[]): Promise<ServerProcess[]> {
  const started = await Promise.allSettled(envs.map((env) => startServerProcess(env)));
  const servers = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failed = started.find((result) => result.status === 'rejected');
  if (failed) {
    await Promise.all(servers.map(stopBounded));
    throw failed.reason;
  }
  return servers;
}

/**
 * Starts a server on a port chosen up front and kept (a restart test starts it again on the same
 * port, so that its clients' reconnects find it). Another process may take the free port before
 * the server binds it: then it tries another, three times in all.
 */
export async function startServerOnFreePort(
  start: (port: number) => Promise<ServerProcess>,
): Promise<{ server: ServerProcess; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return { server: await start(port), port };
    } catch (error) {
      if (attempt === 3) throw error;
    }
  }
}
