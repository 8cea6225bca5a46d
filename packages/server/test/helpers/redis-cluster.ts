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

/** One line of CLUSTER NODES, as the tests use it. */
export interface ClusterNodeInfo {
  id: string;
  /** `127.0.0.1:<port>`. */
  address: string;
  role: 'master' | 'replica';
  /** The node id of its master (replicas only). */
  masterId?: string;
  /** Marked failed (`fail` / `fail?`) by the node that answered. */
  failed: boolean;
  /** Slot ranges it serves, as `[first, last]`. */
  slots: [number, number][];
}

/** A Redis Cluster of a test's own: primaries (and replicas) on free ports, each in its own temp dir. */
export interface RedisClusterProcess {
  /** `127.0.0.1:<port>` of every node, primaries first (what REDIS_CLUSTER_NODES takes). */
  nodes: string[];
  /** The `redis-server` processes, for a caller that must also stop them if it exits abruptly (the bench). */
  processes: ChildProcess[];
  /** CLUSTER NODES as one live node sees it (the first that answers). */
  topology(): Promise<ClusterNodeInfo[]>;
  /** The master serving `slot` now, as a live node sees it. */
  masterOf(slot: number): Promise<ClusterNodeInfo>;
  /** Runs `run` on a connection of its own to the node at `address` (closed after). */
  onNode<T>(address: string, run: (client: Redis) => Promise<T>): Promise<T>;
  /** Sends `signal` to the node at `address` by its PID and waits for it to exit. */
  kill(address: string, signal: NodeJS.Signals): Promise<void>;
  /**
   * Freezes (SIGSTOP) or thaws (SIGCONT) the node at `address`, by its PID: a frozen replica reads
   * nothing of its replication stream, which piles up in its primary.
   */
  freeze(address: string, frozen: boolean): void;
  /** Stops every node by its PID and deletes the temp dirs. */
  stop(): Promise<void>;
}

/** Options of {@link startRedisCluster}. */
export interface RedisClusterOptions {
  /** Replicas per primary (default 0). With replicas, a primary that dies fails over to one. */
  replicas?: number;
  /**
   * `cluster-node-timeout` (default 2 000 ms): how long a node is unreachable before it is failed,
   * hence how soon its replica takes over (about twice this on an idle machine).
   */
  nodeTimeoutMs?: number;
}

/**
 * Starts `masters × (1 + replicas)` `redis-server --cluster-enabled yes` processes (no
 * persistence), joins them with `redis-cli --cluster create` (slots spread evenly over the
 * primaries, `replicas` replicas each) and waits until every node says `cluster_state:ok` and every
 * replica's link to its primary is up. Stopped by PID (never pkill).
 */
export async function startRedisCluster(masters = 3, options: RedisClusterOptions = {}): Promise<RedisClusterProcess> {
  const replicas = options.replicas ?? 0;
  const servers = new Map<string, TrackedChild>();
  const dirs: string[] = [];
  const nodes: string[] = [];
  const stop = async () => {
    // A frozen node would never act on the SIGTERM.
    for (const server of servers.values())
      if (!server.hasExited() && server.child.pid) process.kill(server.child.pid, 'SIGCONT');
    await Promise.all([...servers.values()].map((server) => server.stop('SIGTERM')));
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  };
  const withNode = async <T>(address: string, run: (client: Redis) => Promise<T>): Promise<T> => {
    const [host, port] = address.split(':');
    const client = new Redis({
      host,
      port: Number(port),
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: 2_000,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return await run(client);
    } finally {
      client.disconnect();
    }
  };
  const topology = async (): Promise<ClusterNodeInfo[]> => {
    let lastError: unknown;
    for (const address of nodes) {
      if (servers.get(address)?.hasExited()) continue;
      try {
        return parseClusterNodes(String(await withNode(address, (client) => client.cluster('NODES'))));
      } catch (error) {
        lastError = error;
      }
    }
    throw new Error(`no cluster node answered CLUSTER NODES: ${String(lastError)}`);
  };
  try {
    for (let index = 0; index < masters * (1 + replicas); index++) {
      const port = await freePort();
      const dir = await mkdtemp(join(tmpdir(), 'redis-cluster-'));
      dirs.push(dir);
      // prettier-ignore
      const server = spawnTracked(REDIS_SERVER, [
        '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
        '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'),
        '--cluster-node-timeout', String(options.nodeTimeoutMs ?? 2_000),
        // A replica may always take over, however long its link was down (tests kill at will).
        '--cluster-replica-validity-factor', '0',
        '--save', '', '--appendonly', 'no', '--daemonize', 'no',
      ]);
      servers.set(`127.0.0.1:${port}`, server);
      await waitForPort(port, 10_000, () => server.hasExited()).catch((error: unknown) => {
        throw new Error(`cluster node did not start on ${port}: ${String(error)}\n${server.output()}`);
      });
      nodes.push(`127.0.0.1:${port}`);
    }
    // redis-cli makes the first `masters` nodes the primaries and the rest their replicas.
    await execFileAsync(
      REDIS_CLI,
      ['--cluster', 'create', ...nodes, '--cluster-replicas', String(replicas), '--cluster-yes'],
      { timeout: 30_000 },
    );
    const deadline = Date.now() + 30_000;
    for (const node of nodes) {
      await withNode(node, async (client) => {
        for (;;) {
          const info = String(await client.cluster('INFO'));
          const replication = String(await client.info('replication'));
          const linked = !replication.includes('role:slave') || replication.includes('master_link_status:up');
          if (info.includes('cluster_state:ok') && linked) return;
          if (Date.now() > deadline) throw new Error(`cluster not ok on ${node}:\n${info}\n${replication}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      });
    }
    if (replicas > 0) {
      const known = await topology();
      const replicaCount = known.filter((node) => node.role === 'replica').length;
      if (replicaCount !== masters * replicas)
        throw new Error(`expected ${masters * replicas} replicas, got ${replicaCount}`);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    nodes,
    processes: [...servers.values()].map((server) => server.child),
    onNode: withNode,
    topology,
    async masterOf(slot) {
      const master = (await topology()).find(
        (node) =>
          node.role === 'master' && !node.failed && node.slots.some(([first, last]) => slot >= first && slot <= last),
      );
      if (!master) throw new Error(`no live master serves slot ${slot}`);
      return master;
    },
    async kill(address, signal) {
      const server = servers.get(address);
      if (!server) throw new Error(`no node ${address} in this cluster`);
      await server.stop(signal);
    },
    freeze(address, frozen) {
      const pid = servers.get(address)?.child.pid;
      if (pid === undefined) throw new Error(`no node ${address} in this cluster`);
      process.kill(pid, frozen ? 'SIGSTOP' : 'SIGCONT');
    },
    stop,
  };
}

/** CLUSTER NODES text → one entry per node. */
export function parseClusterNodes(text: string): ClusterNodeInfo[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [id = '', endpoint = '', flags = '', masterId = '-', , , , , ...slots] = line.trim().split(' ');
      const flagList = flags.split(',');
      const address = endpoint.split('@')[0] ?? '';
      return {
        id,
        address,
        role: flagList.includes('master') ? ('master' as const) : ('replica' as const),
        ...(masterId === '-' ? {} : { masterId }),
        failed: flagList.includes('fail') || flagList.includes('fail?'),
        slots: slots
          .filter((range) => !range.startsWith('['))
          .map((range) => {
            const [first = '', last = first] = range.split('-');
            return [Number(first), Number(last)] as [number, number];
          }),
      };
    });
}
