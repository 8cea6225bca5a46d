import { randomBytes } from 'node:crypto';
import { signDevToken } from '../../src/adapters/auth/dev-token.js';
import { createScratchDatabase, type ScratchDatabase } from './scratch-database.js';
import { startServerProcess, startServerProcesses, stopBounded, type ServerProcess } from './server-process.js';
import { requireService, TEST_DATABASE_URL, TEST_REDIS_URL } from './services.js';
import { TEST_JWT_SECRET } from './test-app.js';

/** Whether Redis and PostgreSQL are reachable (skip with a warning outside CI, fail in CI). */
export async function requireClusterServices(): Promise<boolean> {
  return (await requireService('Redis', TEST_REDIS_URL)) && (await requireService('PostgreSQL', TEST_DATABASE_URL));
}

/** Real server processes sharing one Redis key prefix and one scratch PostgreSQL database. */
export interface Cluster {
  instances: ServerProcess[];
  /** `INSTANCE_ID` of each instance, same order (what `connection.established` reports). */
  instanceIds: string[];
  /** The REDIS_KEY_PREFIX, unique to this cluster. */
  prefix: string;
  database: ScratchDatabase;
  /** The instance whose `INSTANCE_ID` is `instanceId`. */
  byInstanceId(instanceId: string): ServerProcess;
  /**
   * Starts instance `index` again (same `INSTANCE_ID` and environment, a new port) once the
   * previous process has exited, and puts it in its place in `instances`.
   */
  restart(index: number): Promise<ServerProcess>;
  /** SIGTERM to every instance still running (SIGKILL past a bound), then drops the database. */
  stop(): Promise<void>;
}

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  size?: number;
  /** On top of the cluster's own (REDIS_URL, REDIS_KEY_PREFIX, DATABASE_URL), which it may override. */
  env?: Record<string, string>;
  /** The DATABASE_URL instances get for the scratch database's URL (e.g. through a proxy); default: as is. */
  reachDatabase?: (url: string) => string;
}

/**
 * Starts `size` instances of `src/main.ts` on Redis (unique REDIS_KEY_PREFIX) and a fresh
 * PostgreSQL database, all at once (the migration lock must keep them from racing).
 */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const size = options.size ?? 2;
  const prefix = `cl${randomBytes(4).toString('hex')}`;
  const database = await createScratchDatabase();
  const instanceIds = Array.from({ length: size }, (_, index) => `${prefix}-${index + 1}`);
  const env = {
    REDIS_URL: TEST_REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    DATABASE_URL: options.reachDatabase?.(database.url) ?? database.url,
    ...options.env,
  };
  let instances: ServerProcess[];
  try {
    instances = await startServerProcesses(instanceIds.map((instanceId) => ({ ...env, INSTANCE_ID: instanceId })));
  } catch (error) {
    await database.drop();
    throw error;
  }
  // Restarts still starting when the cluster is stopped: waited for, so none outlives the test.
  const restarting = new Set<Promise<ServerProcess>>();
  const stop = async () => {
    await Promise.allSettled(restarting);
    await Promise.all(instances.map(stopBounded));
    await database.drop();
  };
  return {
    instances,
    instanceIds,
    prefix,
    database,
    byInstanceId(instanceId) {
      const instance = instances[instanceIds.indexOf(instanceId)];
      if (!instance) throw new Error(`no instance ${instanceId} (have ${instanceIds.join(', ')})`);
      return instance;
    },
    async restart(index) {
      const previous = instances[index];
      const instanceId = instanceIds[index];
      if (!previous || instanceId === undefined) throw new Error(`no instance #${index}`);
      await previous.exited;
      const starting = startServerProcess({ ...env, INSTANCE_ID: instanceId });
      restarting.add(starting);
      try {
        const instance = await starting;
        instances[index] = instance;
        return instance;
      } finally {
        restarting.delete(starting);
      }
    },
    stop,
  };
}

/** A token signed with the test secret every test process uses, granting `topics` besides `user:<userId>`. */
export function clusterToken(userId: string, scope?: string, topics?: string[]): Promise<string> {
  return signDevToken(TEST_JWT_SECRET, {
    userId,
    expiresIn: 3600,
    ...(scope ? { scope } : {}),
    ...(topics ? { topics } : {}),
  });
}

/**
 * Publishes a `notification` on `topic` through `baseUrl` (an instance or a proxy) and returns its id;
 * throws unless it was accepted (202, or 201 once stored for a critical one).
 */
export async function publishNotification(
  baseUrl: string,
  event: { topic: string; title: string; critical?: boolean },
): Promise<string> {
  const critical = event.critical ?? false;
  const response = await fetch(new URL('/api/events', baseUrl), {
    method: 'POST',
    headers: {
      authorization: `Bearer ${await clusterToken('publisher', 'events:publish')}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({
      topic: event.topic,
      type: 'notification',
      payload: { title: event.title, level: 'info' },
      critical,
    }),
  });
  const body = await response.text();
  if (response.status !== (critical ? 201 : 202)) {
    throw new Error(`publish through ${baseUrl} answered ${response.status}: ${body}`);
  }
  return (JSON.parse(body) as { id: string }).id;
}
