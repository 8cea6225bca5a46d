import { readdir, readFile } from 'node:fs/promises';
import type { SqlDatabase, SqlSession } from './sql-database.js';

/** One schema change: `version` is its file name (e.g. `001-events.sql`), applied in name order. */
export interface Migration {
  version: string;
  sql: string;
}

/** Options of {@link runMigrations}. */
export interface RunMigrationsOptions {
  /**
   * Schema to create (if missing) before migrating, under the same lock so two instances
   * starting together cannot race on it. The connection's `search_path` must already name it.
   * Omitted: migrate whatever schema the connection's `search_path` points at.
   */
  schema?: string;
  /** Defaults to {@link loadMigrations}() — the `.sql` files next to this module. */
  migrations?: readonly Migration[];
}

/** Where the shared migrations live; read at runtime so PGlite and PostgreSQL run the same bytes. */
const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url);
const MIGRATION_FILE = /^\d{3}-[a-z0-9-]+\.sql$/;
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
/** Prefix of the advisory-lock key; hashed with the schema so unrelated schemas do not wait on each other. */
const LOCK_NAMESPACE = 'infinitescribe-realtime:migrations:';

/** Reads the migration files of `dir` (default: `store/migrations/`), sorted by version. */
export async function loadMigrations(dir: URL = MIGRATIONS_DIR): Promise<Migration[]> {
  const names = (await readdir(dir)).filter((name) => MIGRATION_FILE.test(name)).sort();
  return Promise.all(names.map(async (version) => ({ version, sql: await readFile(new URL(version, dir), 'utf8') })));
}

/**
 * Throws unless `name` is a plain lower-case SQL identifier, so it can be spliced into DDL and
 * connection options without quoting or injection concerns.
 */
export function assertSchemaName(name: string): void {
  if (!IDENTIFIER.test(name)) {
    throw new Error(`invalid schema name "${name}": use lower-case letters, digits and _ (max 63)`);
  }
}

/**
 * Applies the pending migrations in order, in one transaction, recording each in
 * `schema_migrations`. A transaction-scoped advisory lock serialises concurrent runners (several
 * instances starting at once): the second waits, then finds nothing left to do.
 * @returns the versions this call applied (empty when already up to date).
 */
export async function runMigrations(db: SqlDatabase, options: RunMigrationsOptions = {}): Promise<string[]> {
  if (options.schema !== undefined) assertSchemaName(options.schema);
  const migrations = options.migrations ?? (await loadMigrations());
  return db.transaction(async (session) => {
    await session.query('SELECT pg_advisory_xact_lock(hashtext($1))', [LOCK_NAMESPACE + (options.schema ?? '')]);
    if (options.schema !== undefined) await session.exec(`CREATE SCHEMA IF NOT EXISTS ${options.schema}`);
    await session.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())',
    );
    const applied = await appliedVersions(session);
    const pending = migrations.filter((migration) => !applied.has(migration.version));
    for (const migration of pending) {
      await session.exec(migration.sql);
      await session.query('INSERT INTO schema_migrations (version) VALUES ($1)', [migration.version]);
    }
    return pending.map((migration) => migration.version);
  });
}

async function appliedVersions(session: SqlSession): Promise<Set<string>> {
  const { rows } = await session.query('SELECT version FROM schema_migrations');
  return new Set(rows.map((row) => String(row.version)));
}
