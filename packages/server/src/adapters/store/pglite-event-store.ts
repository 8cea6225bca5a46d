import { mkdir } from 'node:fs/promises';
import { PGlite, type Results, type Transaction } from '@electric-sql/pglite';
import type { SqlDatabase, SqlResult, SqlSession } from './sql-database.js';
import { DEFAULT_HEALTH_TIMEOUT_MS, SqlEventStore } from './sql-event-store.js';

/** Options of {@link PgliteEventStore}. */
export interface PgliteEventStoreOptions {
  /**
   * Folder of the database files, created if missing. Omitted: in memory (tests), gone on close;
   * every in-memory store of a process after the first starts from a copy of the first one's
   * freshly migrated database (see {@link PgliteEventStore}).
   */
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
  /**
   * The files of an in-memory database just migrated, taken by the process's first in-memory store
   * before it let anything be written. Creating a database (PGlite's initdb) and migrating it takes
   * over a second of CPU; loading these files a fraction of that, and a test suite opens hundreds.
   */
  private static migratedTemplate: Promise<Blob | undefined> | undefined;

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

  protected override async migrated(): Promise<void> {
    if (this.options.dataDir !== undefined || PgliteEventStore.migratedTemplate !== undefined) return;
    const db = await this.opening;
    // A failed dump costs later stores their head start, nothing else: they create their own.
    PgliteEventStore.migratedTemplate = db?.dumpDataDir('none').catch(() => undefined);
    await PgliteEventStore.migratedTemplate;
  }

  private async open(): Promise<PGlite> {
    const { dataDir } = this.options;
    if (dataDir === undefined) {
      const template = await PgliteEventStore.migratedTemplate;
      return template === undefined ? PGlite.create() : PGlite.create({ loadDataDir: template });
    }
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
