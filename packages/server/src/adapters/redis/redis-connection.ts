import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

/**
 * Where Redis is: one server (`redis://…` URL), or a Redis Cluster given by some of its nodes
 * (`host:port`; the client discovers the rest, and follows slot moves and failovers).
 *
 * On a Cluster the keys one script or command uses together share a slot, as Cluster requires:
 * the bus's keys and channels and the connection leases carry the deployment's hash tag
 * `{<prefix>}` (redis-bus-keys.ts, connection-leases.ts); tickets and idempotency keys are
 * single-key operations without a tag, spread over the shards. What the one tag costs (a
 * deployment's bus lives on one shard) and why: redis-event-bus.ts and docs/scaling.md.
 */
export type RedisTarget = string | { clusterNodes: readonly string[] };

/** Whether the target is a Redis Cluster (sharded pub/sub: SPUBLISH / SSUBSCRIBE). */
export function isCluster(target: RedisTarget): target is { clusterNodes: readonly string[] } {
  return typeof target !== 'string';
}

/** `host:port` (or `redis://host:port`) → the node ioredis' Cluster starts from. */
export function parseClusterNode(node: string): { host: string; port: number } {
  const url = new URL(node.includes('://') ? node : `redis://${node}`);
  const port = Number(url.port || 6379);
  if (url.hostname === '' || !Number.isInteger(port)) throw new Error(`invalid Redis Cluster node "${node}"`);
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port };
}

/**
 * A client of the target. For a Cluster, `options` apply to each node connection (and
 * `lazyConnect` / `enableOfflineQueue` to the cluster client too, so an adapter that fails fast
 * while disconnected does on a Cluster as well); `cluster` adds Cluster options, e.g.
 * `shardedSubscribers` for a subscriber: one connection per primary, so SSUBSCRIBE goes to the
 * shard that owns each channel's slot.
 *
 * The Cluster client is returned typed as `Redis`: it has the same commands (both are ioredis
 * Commanders), `defineCommand`, `status`, `connect`, `quit`, `disconnect` and the `ready` /
 * `error` events, which is all the adapters use; the pub/sub commands differ and are picked by
 * {@link isCluster} where they are used (redis-event-bus.ts).
 */
export function connectRedis(target: RedisTarget, options: RedisOptions, cluster?: Partial<ClusterOptions>): Redis {
  if (!isCluster(target)) return new Redis(target, options);
  const { lazyConnect, ...redisOptions } = options;
  const queue = options.enableOfflineQueue === undefined ? {} : { enableOfflineQueue: options.enableOfflineQueue };
  const client = new Cluster(target.clusterNodes.map(parseClusterNode), {
    lazyConnect,
    ...queue,
    redisOptions,
    ...cluster,
  });
  return client as unknown as Redis;
}

/**
 * Whether Redis answered `error` (ioredis' ReplyError: a key of the wrong type, a script's own
 * error reply), as opposed to not answering (timeout, lost connection, open breaker): the command
 * reached a working Redis, and an input of that command caused it.
 */
export function isRedisReplyError(error: unknown): boolean {
  return error instanceof Error && error.name === 'ReplyError';
}
