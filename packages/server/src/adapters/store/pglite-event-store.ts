import { mkdir } from 'node:fs/promises';
import { PGlite, type Results, type Transaction } from '@electric-sql/pglite';
import type { SqlDatabase, SqlResult, SqlSession } from './sql-database.js';
import { DEFAULT_HEALTH_TIMEOUT_MS, SqlEventStore } from './sql-event-store.js';

/** Options of {@link PgliteEventStore}. */
export interface PgliteEventStoreOptions {
  /** Folder of the database files, created if missing. Omitted: in memory (tests), gone on close. */
  dataDir?: string;
  /** How long `health()` waits; default {@link DEFAULT_HEALTH_TIMEOUT_MS}. */
  healthTimeoutMs?: number;
}

/**
 * The embedded store: PostgreSQL compiled to WASM, in this process, no server to install.
 * One process only per `dataDir` — PGlite has no cross-process locking, so a second process
 * on the same folder would corrupt it; scaled-out deployments use {@link PostgresEventStore}.
 */
export class PgliteEventStore extends SqlEventStore {
  readonly kind = 'pglite';
  private opening: Promise<PGlite> | undefined;

  constructor(private readonly options: PgliteEventStoreOptions = {}) {
    super({ healthTimeoutMs: options.healthTimeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS });
  }

  protected override async database(): Promise<SqlDatabase> {
    this.opening ??= this.open();
    return toSqlDatabase(await this.opening);
  }

  protected override async release(): Promise<void> {
    const db = await this.opening?.catch(() => undefined);
    // close() flushes the WASM file system to dataDir; skipping it can lose the last writes.
    if (db && !db.closed) await db.close();
  }

  private async open(): Promise<PGlite> {
    const { dataDir } = this.options;
    if (dataDir === undefined) return PGlite.create();
    await mkdir(dataDir, { recursive: true });
    return PGlite.create(dataDir);
  }
}

type PgliteQueryable = Pick<Transaction, 'query' | 'exec'>;

function toSqlDatabase(db: PGlite): SqlDatabase {
  return {
    ...toSession(db),
    transaction: (fn) => db.transaction((tx) => fn(toSession(tx))),
  };
}

function toSession(db: PgliteQueryable): SqlSession {
  return {
    query: async (text, params = []) => toSqlResult(await db.query<Record<string, unknown>>(text, [...params])),
    exec: async (script) => {
      await db.exec(script);
    },
  };
}

function toSqlResult(result: Results<Record<string, unknown>>): SqlResult {
  // rowCount is per statement (rows changed or returned); affectedRows is the fallback for older builds.
  return { rows: result.rows, rowCount: result.rowCount ?? result.affectedRows ?? result.rows.length };
}
