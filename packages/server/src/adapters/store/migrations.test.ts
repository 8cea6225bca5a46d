import { PGlite } from '@electric-sql/pglite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadMigrations, runMigrations } from './migrations.js';
import type { SqlDatabase } from './sql-database.js';

/** A bare PGlite behind the runner's interface, to test the runner apart from any store. */
function asSqlDatabase(db: PGlite): SqlDatabase {
  const query = async (text: string, params: readonly unknown[] = []) => {
    const result = await db.query<Record<string, unknown>>(text, [...params]);
    return { rows: result.rows, rowCount: result.rowCount ?? 0 };
  };
  return {
    query,
    transaction: (fn) =>
      db.transaction((tx) =>
        fn({
          query: async (text, params = []) => {
            const result = await tx.query<Record<string, unknown>>(text, [...params]);
            return { rows: result.rows, rowCount: result.rowCount ?? 0 };
          },
          exec: async (script) => {
            await tx.exec(script);
          },
        }),
      ),
  };
}

describe('runMigrations', () => {
  let pglite: PGlite;
  let db: SqlDatabase;

  beforeEach(async () => {
    pglite = await PGlite.create();
    db = asSqlDatabase(pglite);
  });

  afterEach(async () => {
    await pglite.close();
  });

  it('loads the shared .sql files in version order', async () => {
    const migrations = await loadMigrations();
    expect(migrations.map((m) => m.version)).toEqual([
      '001-events.sql',
      '002-realtime-meta.sql',
      '003-pending-events.sql',
      '004-conversations.sql',
    ]);
    expect(migrations[0]?.sql).toMatch(/CREATE TABLE events/);
  });

  it('applies pending migrations once and records them', async () => {
    const all = (await loadMigrations()).map((m) => m.version);
    expect(await runMigrations(db)).toEqual(all);
    expect(await runMigrations(db)).toEqual([]);
    const { rows } = await db.query('SELECT version FROM schema_migrations ORDER BY version');
    expect(rows.map((row) => row.version)).toEqual(all);
    const { rows: indexes } = await db.query(
      "SELECT indexname FROM pg_indexes WHERE tablename = 'events' ORDER BY indexname",
    );
    expect(indexes.map((row) => row.indexname)).toEqual([
      'events_event_key_idx',
      'events_id_idx',
      'events_pending_idx',
      'events_topic_id_idx',
      'events_ts_idx',
    ]);
  });

  it('applies only the new ones when a later migration is added', async () => {
    const first = [{ version: '001-a.sql', sql: 'CREATE TABLE a (x INT);' }];
    expect(await runMigrations(db, { migrations: first })).toEqual(['001-a.sql']);
    const second = [...first, { version: '002-b.sql', sql: 'CREATE TABLE b (x INT); INSERT INTO b VALUES (1);' }];
    expect(await runMigrations(db, { migrations: second })).toEqual(['002-b.sql']);
    expect((await db.query('SELECT x FROM b')).rows).toEqual([{ x: 1 }]);
  });

  it('rolls everything back when a migration fails', async () => {
    const migrations = [
      { version: '001-ok.sql', sql: 'CREATE TABLE ok (x INT);' },
      { version: '002-broken.sql', sql: 'CREATE TABLE broken (x NOPE);' },
    ];
    await expect(runMigrations(db, { migrations })).rejects.toThrow();
    const { rows } = await db.query("SELECT to_regclass('ok') AS ok, to_regclass('schema_migrations') AS log");
    expect(rows[0]).toEqual({ ok: null, log: null });
  });

  it('creates the requested schema and validates its name', async () => {
    await pglite.exec('SET search_path TO tenant_a');
    await runMigrations(db, { schema: 'tenant_a' });
    const { rows } = await db.query(
      "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'tenant_a'",
    );
    expect(rows[0]).toEqual({ n: 5 });
    await expect(runMigrations(db, { schema: 'Bad-Name' })).rejects.toThrow(/invalid schema name/);
  });
});
