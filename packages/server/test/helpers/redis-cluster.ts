import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { spawnTracked, type TrackedChild } from './child-process.js';
import { freePort, waitForPort } from './free-port.js';

const REDIS_SERVER = process.env.TEST_REDIS_SERVER_BIN ?? '/usr/bin/redis-server';
const REDIS_CLI = process.env.TEST_REDIS_CLI_BIN ?? '/usr/bin/redis-cli';
const execFileAsync = promisify(execFile);

/** A Redis Cluster of a test's own: `masters` primaries on free ports, each in its own temp dir. */
export interface RedisClusterProcess {
  /** `127.0.0.1:<port>` of every node (what REDIS_CLUSTER_NODES takes). */
  nodes: string[];
  /** The `redis-server` processes, for a caller that must also stop them if it exits abruptly (the bench). */
  processes: ChildProcess[];
  /** Stops every node by its PID and deletes the temp dirs. */
  stop(): Promise<void>;
}

/**
 * Starts `masters` `redis-server --cluster-enabled yes` processes (no persistence), joins them with
 * `redis-cli --cluster create` (slots spread evenly, no replicas) and waits for `cluster_state:ok`
 * on every node. Stopped by PID (never pkill).
 */
export async function startRedisCluster(masters = 3): Promise<RedisClusterProcess> {
  const servers: TrackedChild[] = [];
  const dirs: string[] = [];
  const nodes: string[] = [];
  const stop = async () => {
    await Promise.all(servers.map((server) => server.stop('SIGTERM')));
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  };
  try {
    for (let index = 0; index < masters; index++) {
      const port = await freePort();
      const dir = await mkdtemp(join(tmpdir(), 'redis-cluster-'));
      dirs.push(dir);
      // prettier-ignore
      const server = spawnTracked(REDIS_SERVER, [
        '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
        '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'),
        '--cluster-node-timeout', '2000', '--save', '', '--appendonly', 'no', '--daemonize', 'no',
      ]);
      servers.push(server);
      await waitForPort(port, 10_000, () => server.hasExited()).catch((error: unknown) => {
        throw new Error(`cluster node did not start on ${port}: ${String(error)}\n${server.output()}`);
      });
      nodes.push(`127.0.0.1:${port}`);
    }
    await execFileAsync(REDIS_CLI, ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'], {
      timeout: 30_000,
    });
    for (const node of nodes) {
      const [host, port] = node.split(':');
      const client = new Redis({ host, port: Number(port), lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await client.connect();
        const deadline = Date.now() + 20_000;
        while (!String(await client.cluster('INFO')).includes('cluster_state:ok')) {
          if (Date.now() > deadline) throw new Error(`cluster not ok on ${node}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      } finally {
        client.disconnect();
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { nodes, processes: servers.map((server) => server.child), stop };
}
