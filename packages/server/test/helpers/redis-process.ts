import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { spawnTracked, type TrackedChild } from './child-process.js';
import { freePort, waitForPort } from './free-port.js';
import { skipOutsideCi } from './services.js';

const REDIS_SERVER = process.env.TEST_REDIS_SERVER_BIN ?? '/usr/bin/redis-server';

/**
 * A Redis server of a test's own, a child process on a free port, for failure tests that stop and
 * restart it (never the shared one other suites use). No persistence: a restart loses every key,
 * as a Redis without RDB/AOF does.
 */
export interface RedisProcess {
  port: number;
  url: string;
  /** PID of the running server; changes on restart. */
  readonly pid: number;
  /** `SHUTDOWN NOSAVE`, then waits for the process to exit. */
  shutdownNoSave(): Promise<void>;
  /** Sends `signal` by PID and waits for the exit (no-op when already stopped). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same port (empty: nothing was saved). */
  start(): Promise<void>;
}

/** Whether a redis-server binary is there to start. */
export function hasRedisServer(): boolean {
  return existsSync(REDIS_SERVER);
}

/** Like {@link hasRedisServer}, but with CI=true a missing binary fails instead of skipping. */
export function requireRedisServer(): boolean {
  return hasRedisServer() || skipOutsideCi('Redis', `no redis-server at ${REDIS_SERVER}`, 'set TEST_REDIS_SERVER_BIN');
}

/** Starts redis-server on 127.0.0.1:<free port>; resolves once it accepts connections. */
export async function startRedisProcess(): Promise<RedisProcess> {
  const port = await freePort();
  let server: TrackedChild | undefined;

  const start = async () => {
    const started = spawnTracked(REDIS_SERVER, [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
    ]);
    server = started;
    try {
      await waitForPort(port, 10_000, () => started.hasExited());
    } catch (error) {
      throw new Error(`redis-server did not start on ${port}: ${String(error)}\n${started.output()}`);
    }
  };

  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    await server?.stop(signal);
  };

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return server?.child.pid ?? -1;
    },
    async shutdownNoSave() {
      const admin = new Redis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: 0, retryStrategy: () => null });
      admin.on('error', () => undefined);
      try {
        await admin.call('SHUTDOWN', 'NOSAVE');
      } catch {
        // The server closes the connection instead of answering.
      } finally {
        admin.disconnect();
      }
      await server?.exited;
    },
    stop,
    start,
  };
}
