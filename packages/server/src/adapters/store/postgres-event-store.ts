import pg from 'pg';
import { CircuitBreaker, type CircuitBreakerOptions } from '../../core/circuit-breaker.js';
import { assertSchemaName } from './migrations.js';
import type { SqlDatabase, SqlResult, SqlSession } from './sql-database.js';
import { DEFAULT_HEALTH_TIMEOUT_MS, SqlEventStore } from './sql-event-store.js';
import type { StoreLogger } from './store-logger.js';

/** Options of {@link PostgresEventStore}. */
export interface PostgresEventStoreOptions {
  /** e.g. `postgres://user:pass@host:5432/db`. */
  connectionString: string;
  /**
   * Schema holding the tables, created if missing (tests use a throw-away `test_<random>`);
   * lower-case identifier only. Omitted: the server's default `search_path` (normally `public`).
   */
  schema?: string;
  /** Maximum pooled connections; default 10. */
  poolSize?: number;
  /** How long `health()` waits for `SELECT 1`; default {@link DEFAULT_HEALTH_TIMEOUT_MS}. */
  healthTimeoutMs?: number;
  /** How long acquiring a connection may take before the operation fails; default 5 000 ms. */
  connectTimeoutMs?: number;
  /** Shown in `pg_stat_activity`, to tell instances apart; default `infinitescribe-realtime`. */
  applicationName?: string;
  /** Told about connections dropped while idle; default: silent (health() reports the outage). */
  logger?: StoreLogger;
  /**
   * The breaker in front of every statement (dependency `postgres`): after `failureThreshold`
   * (default 3) consecutive connection-level failures, operations fail fast for `coolDownMs`
   * (default 5 000), then one trial goes through. SQL errors of a reachable server do not count.
   */
  breaker?: Pick<CircuitBreakerOptions, 'failureThreshold' | 'coolDownMs' | 'onStateChange'>;
}

const DEFAULT_POOL_SIZE = 10;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/**
 * The scaled-out store: PostgreSQL through a `pg.Pool`, shared by every instance. A dropped
 * server never crashes the process: operations reject, `health()` reports `down`, and the pool
 * reconnects on the next use.
 */
export class PostgresEventStore extends SqlEventStore {
  readonly kind = 'postgres';
  private readonly pool: pg.Pool;
  private readonly db: SqlDatabase;

  constructor(options: PostgresEventStoreOptions) {
    if (options.schema !== undefined) assertSchemaName(options.schema);
    super({
      healthTimeoutMs: options.healthTimeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS,
      migrations: { schema: options.schema },
      // Leaves most of the pool to reads (replays) while a burst of appends is group-committed.
      appendConcurrency: Math.max(1, Math.floor((options.poolSize ?? DEFAULT_POOL_SIZE) / 2)),
      breaker: new CircuitBreaker({ ...options.breaker, dependency: 'postgres', isFailure: isConnectionFailure }),
    });
    const warn = (error: Error): void =>
      options.logger?.warn({ err: error }, 'PostgreSQL event store connection error');
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize ?? DEFAULT_POOL_SIZE,
      // pg waits forever for a connection by default; a hung server must fail operations instead.
      connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      application_name: options.applicationName ?? 'infinitescribe-realtime',
      // Every pooled connection, including ones opened after a reconnect, sees the same schema.
      options: options.schema === undefined ? undefined : `-c search_path=${options.schema}`,
    });
    // Without a listener an idle client's socket error is an uncaught 'error' event: a crash.
    this.pool.on('error', warn);
    this.db = poolDatabase(this.pool, warn);
  }

  protected override database(): Promise<SqlDatabase> {
    return Promise.resolve(this.db);
  }

  protected override release(): Promise<void> {
    return this.pool.end();
  }
}

/**
 * Whether an error says the server is unreachable or unwell (it counts against the breaker), as
 * opposed to a statement the server answered with an error (constraint, syntax: it is up).
 * SQLSTATE classes 08 (connection), 53 (resources), 57 (operator intervention, e.g. shutdown),
 * 58 (system) and XX (internal) count; network errors and pool timeouts carry no SQLSTATE and count.
 */
export function isConnectionFailure(error: unknown): boolean {
  if (error instanceof pg.DatabaseError && typeof error.code === 'string') return /^(08|53|57|58|XX)/.test(error.code);
  return true;
}

function poolDatabase(pool: pg.Pool, onClientError: (error: Error) => void): SqlDatabase {
  return {
    query: async (text, params = []) => toSqlResult(await pool.query(text, [...params])),
    transaction: async (fn) => {
      const client = await pool.connect();
      // The pool only listens to idle clients; a checked-out one needs its own listener.
      client.on('error', onClientError);
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await fn(clientSession(client));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch((rollbackError: unknown) => {
          broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
        });
        throw error;
      } finally {
        client.off('error', onClientError);
        // Passing an error destroys the connection instead of returning a half-open transaction to the pool.
        client.release(broken);
      }
    },
  };
}

function clientSession(client: pg.PoolClient): SqlSession {
  return {
    query: async (text, params = []) => toSqlResult(await client.query(text, [...params])),
    exec: async (script) => {
      // Without parameters pg uses the simple query protocol, which accepts several statements.
      await client.query(script);
    },
  };
}

function toSqlResult(result: pg.QueryResult): SqlResult {
  return { rows: result.rows as Record<string, unknown>[], rowCount: result.rowCount ?? result.rows.length };
}
