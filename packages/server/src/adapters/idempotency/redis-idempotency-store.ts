import { randomBytes } from 'node:crypto';
import type { Redis, RedisOptions } from 'ioredis';
import { quitRedis } from '../redis/quit-redis.js';
import { connectRedis, type RedisTarget } from '../redis/redis-connection.js';
import {
  DEFAULT_ANSWER_TTL_MS,
  DEFAULT_CLAIM_TTL_MS,
  outcomeOf,
  type BeginOutcome,
  type IdempotencyClaim,
  type IdempotencyRetention,
  type IdempotencyStore,
  type KeyEntry,
  type StoredAnswer,
} from './idempotency-store.js';

/** Options of {@link RedisIdempotencyStore}. */
export interface RedisIdempotencyStoreOptions extends IdempotencyRetention {
  /** One Redis (URL) or a Redis Cluster (its nodes). */
  url: RedisTarget;
  /** Keys are `<prefix>:idempotency:<key>`. Default `is`. */
  keyPrefix?: string;
  /** A command unanswered this long fails (the publish then answers 503). Default 3000. */
  commandTimeoutMs?: number;
  connectionName?: string;
  redisOptions?: RedisOptions;
}

/**
 * Replaces the claim `ARGV[1]` (exactly what `begin` wrote) with `ARGV[2]` for `ARGV[3]` ms, or
 * deletes it when `ARGV[2]` is empty; anything else at the key (a lapsed claim taken over by
 * another request) stays. Returns 1 when it replaced.
 */
const REPLACE_CLAIM = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return 1
`;

interface ScriptedRedis extends Redis {
  isReplaceClaim(key: string, claim: string, replacement: string, ttlMs: number): Promise<number>;
}

/**
 * Keys in Redis, so a retry that lands on another instance finds the first request's claim or
 * answer. A claim is `SET NX PX` (exactly one request wins a race); the answer replaces it only
 * while that claim still holds (a Lua compare-and-set). Keys carry no hash tag: they spread over a
 * Cluster, one key per operation.
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  private readonly client: ScriptedRedis;
  private readonly prefix: string;
  private readonly answerTtlMs: number;
  private readonly claimTtlMs: number;

  constructor(options: RedisIdempotencyStoreOptions) {
    this.prefix = `${options.keyPrefix ?? 'is'}:idempotency:`;
    this.answerTtlMs = options.answerTtlMs ?? DEFAULT_ANSWER_TTL_MS;
    this.claimTtlMs = options.claimTtlMs ?? DEFAULT_CLAIM_TTL_MS;
    this.client = connectRedis(options.url, {
      maxRetriesPerRequest: 1,
      commandTimeout: options.commandTimeoutMs ?? 3_000,
      ...options.redisOptions,
      connectionName: options.connectionName ?? 'infinitescribe:idempotency',
    }) as ScriptedRedis;
    this.client.defineCommand('isReplaceClaim', { lua: REPLACE_CLAIM, numberOfKeys: 1 });
    // Failures surface on the command that hits them; this only keeps ioredis from printing them.
    this.client.on('error', () => undefined);
  }

  async begin(key: string, fingerprint: string): Promise<BeginOutcome> {
    const redisKey = this.prefix + key;
    const claim = JSON.stringify({ fingerprint, claim: randomBytes(12).toString('base64url') });
    // The holder may release between our SET and GET: then the key is free again, so try again.
    for (let attempt = 0; attempt < 3; attempt++) {
      if ((await this.client.set(redisKey, claim, 'PX', this.claimTtlMs, 'NX')) === 'OK') {
        return { kind: 'claimed', claim: { key, value: claim } };
      }
      const held = await this.client.get(redisKey);
      if (held !== null) return outcomeOf(parseEntry(held), fingerprint);
    }
    return { kind: 'in_flight' };
  }

  async complete(claim: IdempotencyClaim, answer: StoredAnswer): Promise<void> {
    const { fingerprint } = parseEntry(claim.value);
    const entry: KeyEntry = { fingerprint, status: answer.status, body: answer.body };
    await this.client.isReplaceClaim(this.prefix + claim.key, claim.value, JSON.stringify(entry), this.answerTtlMs);
  }

  async release(claim: IdempotencyClaim): Promise<void> {
    await this.client.isReplaceClaim(this.prefix + claim.key, claim.value, '', 0);
  }

  close(): Promise<void> {
    return quitRedis(this.client);
  }
}

/** A stored entry; anything unreadable counts as another request's (never replayed, never matched). */
function parseEntry(json: string): KeyEntry {
  try {
    const value = JSON.parse(json) as Partial<Record<'fingerprint' | 'claim' | 'body', unknown>> & { status?: unknown };
    if (typeof value.fingerprint === 'string') {
      if (typeof value.claim === 'string') return { fingerprint: value.fingerprint, claim: value.claim };
      if (typeof value.status === 'number' && typeof value.body === 'string') {
        return { fingerprint: value.fingerprint, status: value.status, body: value.body };
      }
    }
  } catch {
    // Falls through.
  }
  return { fingerprint: '', claim: '' };
}
