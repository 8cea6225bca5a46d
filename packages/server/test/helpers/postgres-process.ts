import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { spawnTracked, type TrackedChild } from './child-process.js';
import { freePort } from './free-port.js';

/**
 * A PostgreSQL server of a test's own (initdb into a temp folder, `postgres` on a free port), for
 * failure tests that stop and restart it; the shared server other suites use is never touched.
 * As root it runs as the `postgres` OS user (initdb refuses root).
 */
export interface PostgresProcess {
  port: number;
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust authentication). */
  url: string;
  /** PID of the postmaster while running; changes on restart. */
  readonly pid: number;
  /** Sends `signal` to the postmaster (SIGINT: fast shutdown, SIGKILL: crash) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same port and data folder; resolves once it answers queries. */
  start(): Promise<void>;
  /** Stops it and deletes the data folder. */
  remove(): Promise<void>;
}

/** The folder holding initdb and postgres, or undefined when PostgreSQL is not installed. */
export function findPostgresBinaries(): string | undefined {
  if (process.env.TEST_POSTGRES_BIN_DIR) return process.env.TEST_POSTGRES_BIN_DIR;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((name) => existsSync(join(root, name, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

/** uid/gid to run as: the `postgres` user when we are root, else ourselves. */
function runAs(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}

/** initdb + postgres on 127.0.0.1:<free port>, unix socket in the data folder's parent. */
export async function startPostgresProcess(): Promise<PostgresProcess> {
  const bin = findPostgresBinaries();
  if (bin === undefined) throw new Error('PostgreSQL binaries not found (set TEST_POSTGRES_BIN_DIR)');
  const user = runAs();
  const root = mkdtempSync(join(tmpdir(), 'is-pg-'));
  const dataDir = join(root, 'data');
  if (user.uid !== undefined && user.gid !== undefined) chownSync(root, user.uid, user.gid);
  execFileSync(join(bin, 'initdb'), ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'], {
    ...user,
    stdio: 'pipe',
  });
  const port = await freePort();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let server: TrackedChild | undefined;

  const start = async () => {
    const started = spawnTracked(
      join(bin, 'postgres'),
      ['-D', dataDir, '-p', String(port), '-k', root, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'],
      user,
    );
    server = started;
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (started.hasExited()) throw new Error(`postgres exited before accepting connections:\n${started.output()}`);
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('SELECT 1');
        return;
      } catch (error) {
        if (Date.now() > deadline) {
          throw new Error(`postgres did not accept connections: ${String(error)}\n${started.output()}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      } finally {
        await client.end().catch(() => undefined);
      }
    }
  };

  const stop = async (signal: NodeJS.Signals = 'SIGINT') => {
    await server?.stop(signal);
  };

  await start();
  return {
    port,
    url,
    get pid() {
      return server?.child.pid ?? -1;
    },
    stop,
    start,
    async remove() {
      await stop('SIGINT');
      rmSync(root, { recursive: true, force: true });
    },
  };
}
