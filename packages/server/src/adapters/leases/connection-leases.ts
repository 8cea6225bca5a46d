import type { Redis, RedisOptions } from 'ioredis';
import { quitRedis } from '../redis/quit-redis.js';
import { connectRedis, isRedisReplyError, type RedisTarget } from '../redis/redis-connection.js';
import { TurnBatch, type BatchOutcome } from '../../core/turn-batch.js';
import { withTimeout } from '../../core/with-timeout.js';

/** One open stream, as the cluster-wide count knows it. */
export interface ConnectionLease {
  userId: string;
  connectionId: string;
}

/** Outcome of {@link ConnectionLeases.acquire}. */
export type LeaseResult =
  | { granted: true; counted: boolean }
  /** The user already holds `held` streams across the cluster. */
  | { granted: false; held: number };

/**
 * Streams per user counted across every instance, so MAX_CONNECTIONS_PER_USER holds for the
 * cluster and not per instance. Best effort by design: when the counter is unreachable, a lease
 * is granted uncounted (the per-instance limit still holds) rather than refusing every stream.
 */
export interface ConnectionLeases {
  /** Takes a lease for a new stream unless the user holds `limit` already. Never rejects. */
  acquire(lease: ConnectionLease, limit: number): Promise<LeaseResult>;
  /** Gives a lease back (the stream ended). Never rejects; a lost release expires with its TTL. */
  release(lease: ConnectionLease): Promise<void>;
  /** Re-asserts the leases of streams still open, before their TTL runs out (and after Redis lost them). */
  refresh(leases: readonly ConnectionLease[]): Promise<void>;
  close(): Promise<void>;
}

/** Options of {@link RedisConnectionLeases}. */
export interface RedisConnectionLeasesOptions {
  /** One Redis (URL) or a Redis Cluster (its nodes). */
  url: RedisTarget;
  /** Keys are `{<prefix>}:<keyspace>:<userId>` (one hash tag, like the bus: a refresh spans many users). Default `is`. */
  keyPrefix?: string;
  /** What is counted: `conns` (streams, the default), `generations`… Each keyspace has its own limit. */
  keyspace?: string;
  /** How long a lease lives without refresh: a killed instance's streams stop counting after it. */
  ttlMs: number;
  /** Longest wait for Redis when a stream opens; past it the lease is granted uncounted. Default 1 000 ms. */
  timeoutMs?: number;
  connectionName?: string;
  redisOptions?: RedisOptions;
  logger?: { warn(details: object, message: string): void };
}

/**
 * acquire, for the leases of one event-loop turn. KEYS: per lease, its user's sorted set (member =
 * connection id, score = expiry in ms, Redis time; a user may come twice). ARGV: ttl ms, then per
 * lease its connection id and limit. In order, per lease: drops the set's expired leases, refuses
 * past the limit (the lease's answer is the count held), else adds or renews the lease (answer
 * -1). One script: two instances admitting the same user at once cannot both take the last slot,
 * and two leases of one user in the same batch count each other, as two scripts in a row would.
 */
const ACQUIRE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local out = {}
for k = 1, #KEYS do
  local id, limit = ARGV[2 * k], tonumber(ARGV[2 * k + 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', now)
  local answer = -1
  if not redis.call('ZSCORE', KEYS[k], id) then
    local held = redis.call('ZCARD', KEYS[k])
    if held >= limit then answer = held end
  end
  if answer < 0 then
    redis.call('ZADD', KEYS[k], now + ttl, id)
    redis.call('PEXPIRE', KEYS[k], ttl)
  end
  out[k] = answer
end
return out
`;

/**
 * refresh, for many users at once. KEYS: the users' sorted sets. ARGV: ttl ms; every connection
 * id, each followed by a line break; per key (in KEYS order) how many of those ids are its own,
 * comma-separated. Besides the keys, three arguments whatever the number of leases: building an
 * argument per id costs the instance's event loop far more than these two strings. Returns the
 * keys renewed.
 */
const REFRESH_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local expiry = now + ttl
local ids = {}
for id in string.gmatch(ARGV[2], '([^\\n]+)\\n') do ids[#ids + 1] = id end
local k, at = 0, 1
for count in string.gmatch(ARGV[3], '%d+') do
  k = k + 1
  redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', now)
  for i = at, at + tonumber(count) - 1 do redis.call('ZADD', KEYS[k], expiry, ids[i]) end
  at = at + tonumber(count)
  redis.call('PEXPIRE', KEYS[k], ttl)
end
return k
`;

/**
 * release, for the leases of one event-loop turn. KEYS: per lease, its user's sorted set (a user
 * may come twice). ARGV: per lease, its connection id. Returns how many were removed.
 */
const RELEASE_SCRIPT = `
local removed = 0
for k = 1, #KEYS do removed = removed + redis.call('ZREM', KEYS[k], ARGV[k]) end
return removed
`;

/**
 * Most leases one refresh script renews. A script blocks Redis while it runs (every publish of
 * every instance waits), so a refresh of many streams is cut into calls of this size, about a
 * millisecond of Redis time each, that Redis can interleave with other clients' commands; they
 * are sent together, so a refresh still costs one round trip.
 */
const REFRESH_BATCH = 500;

/** Most leases one acquire script takes (as REFRESH_BATCH, about a millisecond of Redis time). */
const ACQUIRE_BATCH = 500;

/** Most leases one release script gives back (as ACQUIRE_BATCH). */
const RELEASE_BATCH = 500;

type ScriptCall = (...args: (string | number)[]) => Promise<unknown>;

interface ScriptedRedis extends Redis {
  isLeaseAcquire: ScriptCall;
  isLeaseRefresh: ScriptCall;
  isLeaseRelease: ScriptCall;
}

/**
 * Leases in Redis, one sorted set per user whose scores are expiry times: instances refresh their
 * streams' leases every ttl/3 and remove them on close, so the streams of an instance that died
 * (kill -9) stop counting once their TTL has passed. The client does not queue commands while
 * disconnected: a stream never waits for a Redis that is not there.
 */
export class RedisConnectionLeases implements ConnectionLeases {
  private readonly client: ScriptedRedis;
  private readonly prefix: string;
  private readonly timeoutMs: number;
  /** Resolves once connected the first time: until then a stream waits (bounded) rather than going uncounted. */
  private readonly firstReady: Promise<void>;
  /** The acquisitions of one event-loop turn, made by one script call (see acquireBatch). */
  private readonly acquisitions = new TurnBatch<AcquireRequest, number>({
    execute: (requests) => this.acquireBatch(requests),
    maxWeight: ACQUIRE_BATCH,
    retrySeparately: isRedisReplyError,
  });
  /**
   * The releases of one event-loop turn, given back by one script call: when an instance ends
   * its streams together (a shutdown, a proxy dropping its connections) that is a few calls, not
   * one command per stream.
   */
  private readonly releases = new TurnBatch<ConnectionLease, void>({
    execute: (leases) => this.releaseBatch(leases),
    maxWeight: RELEASE_BATCH,
    retrySeparately: isRedisReplyError,
  });

  constructor(private readonly options: RedisConnectionLeasesOptions) {
    this.prefix = `{${options.keyPrefix ?? 'is'}}:${options.keyspace ?? 'conns'}:`;
    this.timeoutMs = options.timeoutMs ?? 1_000;
    this.client = connectRedis(options.url, {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      ...options.redisOptions,
      connectionName: options.connectionName ?? 'infinitescribe:leases',
    }) as ScriptedRedis;
    // The number of keys varies per call: it is the first argument.
    this.client.defineCommand('isLeaseAcquire', { lua: ACQUIRE_SCRIPT });
    this.client.defineCommand('isLeaseRefresh', { lua: REFRESH_SCRIPT });
    this.client.defineCommand('isLeaseRelease', { lua: RELEASE_SCRIPT });
    // Failures surface on the command that hits them; this only keeps ioredis from printing them.
    this.client.on('error', () => undefined);
    this.firstReady = new Promise((resolve) => this.client.once('ready', () => resolve()));
  }

  async acquire(lease: ConnectionLease, limit: number): Promise<LeaseResult> {
    try {
      const held = await this.acquisitions.add({ lease, limit });
      return held < 0 ? { granted: true, counted: true } : { granted: false, held };
    } catch (error) {
      this.options.logger?.warn(
        { err: error, userId: lease.userId },
        'cluster-wide connection count unavailable; only the per-instance limit applies',
      );
      return { granted: true, counted: false };
    }
  }

  async release(lease: ConnectionLease): Promise<void> {
    try {
      await this.releases.add(lease);
    } catch {
      // Expires with its TTL.
    }
  }

  async refresh(leases: readonly ConnectionLease[]): Promise<void> {
    if (leases.length === 0 || this.client.status !== 'ready') return;
    const byUser = new Map<string, string[]>();
    for (const lease of leases) {
      // Ids are ours (random UUIDs, job ids): never empty, never a line break, which separates them.
      if (lease.connectionId === '' || lease.connectionId.includes('\n')) continue;
      const ids = byUser.get(lease.userId);
      if (ids) ids.push(lease.connectionId);
      else byUser.set(lease.userId, [lease.connectionId]);
    }
    const calls: Promise<unknown>[] = [];
    let keys: string[] = [];
    let ids = '';
    let counts: number[] = [];
    let batched = 0;
    const flush = () => {
      calls.push(this.client.isLeaseRefresh(keys.length, ...keys, this.options.ttlMs, ids, counts.join(',')));
      keys = [];
      ids = '';
      counts = [];
      batched = 0;
    };
    for (const [userId, userIds] of byUser) {
      keys.push(this.prefix + userId);
      counts.push(userIds.length);
      ids += `${userIds.join('\n')}\n`;
      batched += userIds.length;
      if (batched >= REFRESH_BATCH) flush();
    }
    if (keys.length > 0) flush();
    const results = await Promise.allSettled(calls);
    const failed = results.find((result) => result.status === 'rejected');
    if (failed) {
      this.options.logger?.warn({ err: failed.reason }, 'connection lease refresh failed; retried on the next round');
    }
  }

  close(): Promise<void> {
    // Releases of this turn (streams ended by the same shutdown) go before the QUIT, not after it.
    this.releases.flush();
    return quitRedis(this.client);
  }

  /**
   * ACQUIRE_SCRIPT for the acquisitions of one turn: one round trip and one script however many
   * streams open at once (a reconnect storm opens thousands on one instance). Bounded by the
   * timeout as a whole: its leases are granted uncounted together.
   */
  private async acquireBatch(requests: readonly AcquireRequest[]): Promise<BatchOutcome<number>[]> {
    const call = async () => {
      await this.firstReady;
      return this.client.isLeaseAcquire(
        requests.length,
        ...requests.map((request) => this.prefix + request.lease.userId),
        this.options.ttlMs,
        ...requests.flatMap((request) => [request.lease.connectionId, request.limit]),
      );
    };
    const reply = await withTimeout(call(), this.timeoutMs, `no answer from Redis within ${this.timeoutMs} ms`);
    if (!Array.isArray(reply) || reply.length !== requests.length) {
      throw new Error('unexpected reply to the lease acquire script');
    }
    return reply.map((held: unknown) =>
      typeof held === 'number'
        ? { ok: true, value: held }
        : { ok: false, error: new Error(`unexpected lease answer ${String(held)}`) },
    );
  }

  /**
   * RELEASE_SCRIPT for the releases of one turn. Not before the first connection (a release then
   * fails at once, and the lease expires with its TTL), and bounded by the timeout like an acquire.
   */
  private async releaseBatch(leases: readonly ConnectionLease[]): Promise<BatchOutcome<void>[]> {
    const call = this.client.isLeaseRelease(
      leases.length,
      ...leases.map((lease) => this.prefix + lease.userId),
      ...leases.map((lease) => lease.connectionId),
    );
    await withTimeout(call, this.timeoutMs, `no answer from Redis within ${this.timeoutMs} ms`);
    return leases.map(() => ({ ok: true, value: undefined }));
  }
}

/** One acquisition in a batch of {@link RedisConnectionLeases}. */
interface AcquireRequest {
  lease: ConnectionLease;
  limit: number;
}
