import { randomBytes } from 'node:crypto';
import type { Redis, RedisOptions } from 'ioredis';
import { UnavailableError } from '../../core/errors.js';
import { quitRedis } from '../redis/quit-redis.js';
import { connectRedis, type RedisTarget } from '../redis/redis-connection.js';
import { withTimeout } from '../../core/with-timeout.js';
import type { Principal } from '../../core/principal.js';
import type { TicketStore } from './ticket-store.js';

/** Options of {@link RedisTicketStore}. */
export interface RedisTicketStoreOptions {
  /** One Redis (URL) or a Redis Cluster (its nodes). */
  url: RedisTarget;
  /** Keys are `<prefix>:ticket:<ticket>`. Default `is`. */
  keyPrefix?: string;
  connectionName?: string;
  redisOptions?: RedisOptions;
  /** A command unanswered this long fails (REDIS_COMMAND_TIMEOUT_MS). Default 3 000 ms. */
  commandTimeoutMs?: number;
}

/** Our tickets: 24 random bytes in base64url. Anything else is not looked up. */
const TICKET = /^[A-Za-z0-9_-]{32}$/;

/**
 * Tickets in Redis, so a ticket issued by one instance opens a stream on any other. Issue is
 * `SET ... PX ttl`; consume is `GETDEL` (Redis >= 6.2), atomic, so a ticket works exactly once
 * even when two instances race for it. Keys carry no hash tag: tickets spread over a Cluster.
 */
export class RedisTicketStore implements TicketStore {
  private readonly client: Redis;
  private readonly prefix: string;

  constructor(private readonly options: RedisTicketStoreOptions) {
    this.prefix = `${options.keyPrefix ?? 'is'}:ticket:`;
    this.client = connectRedis(options.url, {
      maxRetriesPerRequest: 3,
      ...options.redisOptions,
      connectionName: options.connectionName ?? 'infinitescribe:tickets',
    });
    // Failures surface on the command that hits them; this only keeps ioredis from printing them.
    this.client.on('error', () => undefined);
  }

  async issue(principal: Principal, ttlMs: number): Promise<string> {
    const ticket = randomBytes(24).toString('base64url');
    await this.call(
      this.client.set(this.prefix + ticket, JSON.stringify(principal), 'PX', Math.max(1, Math.ceil(ttlMs))),
    );
    return ticket;
  }

  async consume(ticket: string): Promise<Principal | undefined> {
    if (!TICKET.test(ticket)) return undefined;
    const stored = await this.call(this.client.getdel(this.prefix + ticket));
    if (stored === null) return undefined;
    return parsePrincipal(stored);
  }

  /** A Redis that fails or does not answer in time is a 503 the client retries, not a 500. */
  private async call<T>(command: Promise<T>): Promise<T> {
    try {
      return await withTimeout(command, this.options.commandTimeoutMs ?? 3_000, 'Redis command timed out');
    } catch (error) {
      throw new UnavailableError('bus_unavailable', 'stream tickets are unavailable: Redis cannot be reached', error);
    }
  }

  close(): Promise<void> {
    return quitRedis(this.client);
  }
}

function parsePrincipal(json: string): Principal | undefined {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { userId, topics, scopes, expiresAt } = value as Record<string, unknown>;
  if (typeof userId !== 'string' || typeof expiresAt !== 'number' || !isStrings(topics) || !isStrings(scopes)) {
    return undefined;
  }
  return { userId, topics, scopes, expiresAt };
}

function isStrings(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}
