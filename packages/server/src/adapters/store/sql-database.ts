/**
 * The few things the shared SQL code needs from a database driver. Both adapters (PGlite and
 * node-postgres) wrap their client in this shape, so statements and row mapping exist once.
 */

/** Rows of one statement, and how many rows it affected (DELETE/INSERT/UPDATE) or returned. */
export interface SqlResult {
  rows: Record<string, unknown>[];
  rowCount: number;
}

/** Runs one parameterised statement (`$1`, `$2`, …). */
export interface SqlExecutor {
  query(text: string, params?: readonly unknown[]): Promise<SqlResult>;
}

/** A connection inside a transaction; `exec` also runs multi-statement scripts (migrations). */
export interface SqlSession extends SqlExecutor {
  exec(script: string): Promise<void>;
}

/** A database: single statements, and transactions that commit when `fn` resolves. */
export interface SqlDatabase extends SqlExecutor {
  /** Commits when `fn` resolves, rolls back and rethrows when it rejects. */
  transaction<T>(fn: (session: SqlSession) => Promise<T>): Promise<T>;
}
