import type { EventType } from '@infinitescribe/protocol';
import type { ComponentHealth, EventDraft, EventRecord } from '../../core/event-record.js';
import type { CircuitBreaker } from '../../core/circuit-breaker.js';
import { withTimeout } from '../../core/with-timeout.js';
import type { EventStore, KeyedEventRecord, PendingEvent, PendingRow, StoreReadQuery } from './event-store.js';
import type { ConversationStore } from './conversation-store.js';
import { GroupCommit } from './group-commit.js';
import { SqlConversationStore } from './sql-conversation-store.js';
import { runMigrations, type RunMigrationsOptions } from './migrations.js';
import type { SqlDatabase, SqlResult } from './sql-database.js';

const COLUMNS = 'id, topic, type, ts, payload, critical';
/** What a write stores per row, as parallel arrays ($1…$7; id NULL for a pending row, key NULL for an append). */
const ROWS = `(id, event_key, topic, type, ts, payload, critical)
  SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::boolean[])`;
const HEAD_ID_KEY = 'head_id';

/** Every statement of the store, shared verbatim by PGlite and PostgreSQL. */
export const EVENT_STORE_SQL = {
  /**
   * One group commit of writes, one statement and one commit: new rows (with their id, or pending
   * under their key), then ids given to pending rows. Returns the keys it confirmed; a key missing
   * from the answer was confirmed before, or its row is gone ({@link EVENT_STORE_SQL.reinsert}).
   * Data-modifying CTEs run to completion whether or not the final SELECT reads them.
   */
  write: `WITH inserted AS (
      INSERT INTO events ${ROWS} ON CONFLICT DO NOTHING
    ), confirmed AS (
      UPDATE events SET id = c.id FROM unnest($8::text[], $9::bigint[]) AS c(event_key, id)
      WHERE events.event_key = c.event_key AND events.id IS NULL
      RETURNING events.event_key
    )
    SELECT event_key FROM confirmed`,
  /** Confirmed events whose pending row is gone, stored whole (a conflict means it is there already). */
  reinsert: `INSERT INTO events ${ROWS} ON CONFLICT DO NOTHING`,
  discardPending: 'DELETE FROM events WHERE event_key = $1 AND id IS NULL',
  readPending: `SELECT event_key, topic, type, ts, payload, critical,
      (EXTRACT(EPOCH FROM now() - created_at) * 1000)::float8 AS age_ms
    FROM events WHERE id IS NULL AND created_at <= now() - $1 * interval '1 millisecond' ORDER BY created_at LIMIT $2`,
  // Two statements rather than "($3 IS NULL OR id < $3)": each keeps a simple, index-friendly plan.
  readAfter: `SELECT ${COLUMNS} FROM events WHERE topic = ANY($1) AND id > $2 ORDER BY id LIMIT $3`,
  readBetween: `SELECT ${COLUMNS} FROM events WHERE topic = ANY($1) AND id > $2 AND id < $3 ORDER BY id LIMIT $4`,
  maxId: 'SELECT COALESCE(MAX(id), 0) AS max_id FROM events',
  // GREATEST: ids never go backwards, so a lower head recorded later (another instance) never wins.
  recordHeadId: `INSERT INTO realtime_meta (key, value) VALUES ('${HEAD_ID_KEY}', $1)
    ON CONFLICT (key) DO UPDATE SET value = GREATEST(realtime_meta.value::bigint, EXCLUDED.value::bigint)::text`,
  takeRecordedHeadId: `DELETE FROM realtime_meta WHERE key = '${HEAD_ID_KEY}' RETURNING value`,
  deleteOlderThan: 'DELETE FROM events WHERE ts < $1::timestamptz',
  deleteOlderThanOnTopics: 'DELETE FROM events WHERE ts < $1::timestamptz AND topic = ANY($2)',
  ping: 'SELECT 1',
} as const;

/** Settings every SQL adapter passes to {@link SqlEventStore}. */
export interface SqlEventStoreSettings {
  /** How long `health()` waits for `SELECT 1` before reporting `down`. */
  healthTimeoutMs: number;
  migrations?: RunMigrationsOptions;
  /**
   * Guards every statement (not the migrations of `init()`): while open, operations fail fast
   * with CircuitOpenError and `health()` reports `down` without touching the database; after the
   * cool-down, the next statement (often the `SELECT 1` of `health()`) is the one trial.
   */
  breaker?: CircuitBreaker;
  /**
   * Appends written at once (see {@link GroupCommit}); the others wait and go in the next batch.
   * 1 for an in-process database (one writer anyway), a few for a pooled server. Default 1.
   */
  appendConcurrency?: number;
}

/** Most writes in one group commit. */
const MAX_WRITE_BATCH = 500;

/** One write of a group commit: a new row (with its id, or pending), or an id for a pending row. */
type StoreWrite = { insert: EventRecord | PendingEvent } | { confirm: KeyedEventRecord };

/** Default of {@link SqlEventStoreSettings.healthTimeoutMs}. */
export const DEFAULT_HEALTH_TIMEOUT_MS = 2_000;

/**
 * The whole {@link EventStore} behaviour in SQL; an adapter only says how to open and release its
 * database. Guards the lifecycle: operations need `init()` first and fail after `close()`.
 */
export abstract class SqlEventStore implements EventStore {
  abstract readonly kind: EventStore['kind'];
  private initialising: Promise<void> | undefined;
  private initialised = false;
  private closed = false;
  private readonly writes: GroupCommit<StoreWrite>;
  readonly conversations: ConversationStore = new SqlConversationStore({
    query: (text, params) => this.query(text, params),
  });

  protected constructor(private readonly settings: SqlEventStoreSettings) {
    this.writes = new GroupCommit({
      write: (batch) => this.writeNow(batch),
      maxInFlight: settings.appendConcurrency ?? 1,
      maxBatch: MAX_WRITE_BATCH,
    });
  }

  /** The database, opened on first call; must not do more than connect (no migrations). */
  protected abstract database(): Promise<SqlDatabase>;
  /** Releases what {@link SqlEventStore.database} opened; called once, by `close()`. */
  protected abstract release(): Promise<void>;
  /** Runs once the migrations are done and before any operation is let through (nothing written yet). */
  protected async migrated(): Promise<void> {}

  init(): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`${this.kind} event store is closed`));
    // Concurrent callers share one run; a failed run can be retried.
    this.initialising ??= this.migrate().catch((error: unknown) => {
      this.initialising = undefined;
      throw error;
    });
    return this.initialising;
  }

  append(event: EventRecord): Promise<void> {
    return this.writes.add({ insert: event });
  }

  insertPending(event: PendingEvent): Promise<void> {
    return this.writes.add({ insert: event });
  }

  confirm(record: KeyedEventRecord): Promise<void> {
    return this.writes.add({ confirm: record });
  }

  async discardPending(key: string): Promise<void> {
    await this.query(EVENT_STORE_SQL.discardPending, [key]);
  }

  async readPending(query: { olderThanMs: number; limit: number }): Promise<PendingRow[]> {
    const { rows } = await this.query(EVENT_STORE_SQL.readPending, [query.olderThanMs, query.limit]);
    return rows.map((row) => ({
      event: { ...toDraft(row), key: String(row.event_key) },
      ageMs: Number(row.age_ms),
    }));
  }

  /** A group commit: every insert and confirmation of the batch in one statement. */
  private async writeNow(batch: StoreWrite[]): Promise<void> {
    const inserts: (EventRecord | PendingEvent)[] = [];
    const confirms: KeyedEventRecord[] = [];
    for (const item of batch) {
      if ('insert' in item) inserts.push(item.insert);
      else confirms.push(item.confirm);
    }
    const { rows } = await this.query(EVENT_STORE_SQL.write, [
      ...rowArrays(inserts),
      confirms.map((record) => record.key),
      confirms.map((record) => record.id),
    ]);
    if (rows.length === confirms.length) return;
    const confirmed = new Set(rows.map((row) => String(row.event_key)));
    const missing = confirms.filter((record) => !confirmed.has(record.key));
    await this.query(EVENT_STORE_SQL.reinsert, rowArrays(missing));
  }

  async readAfter(query: StoreReadQuery): Promise<EventRecord[]> {
    await this.ready(); // lifecycle errors first, even for an empty query
    if (query.topics.length === 0 || query.limit <= 0) return [];
    const topics = [...query.topics];
    const { rows } =
      query.before === undefined
        ? await this.query(EVENT_STORE_SQL.readAfter, [topics, query.after, query.limit])
        : await this.query(EVENT_STORE_SQL.readBetween, [topics, query.after, query.before, query.limit]);
    return rows.map(toEventRecord);
  }

  async maxId(): Promise<number> {
    const { rows } = await this.query(EVENT_STORE_SQL.maxId);
    return toSafeInteger(rows[0]?.max_id ?? 0, 'max_id');
  }

  async recordHeadId(id: number): Promise<void> {
    await this.query(EVENT_STORE_SQL.recordHeadId, [String(toSafeInteger(id, 'head id'))]);
  }

  async takeRecordedHeadId(): Promise<number | undefined> {
    const { rows } = await this.query(EVENT_STORE_SQL.takeRecordedHeadId);
    const value = rows[0]?.value;
    return value === undefined ? undefined : toSafeInteger(value, HEAD_ID_KEY);
  }

  async deleteOlderThan(cutoff: Date, options: { topics?: readonly string[] } = {}): Promise<number> {
    const { rowCount } =
      options.topics === undefined
        ? await this.query(EVENT_STORE_SQL.deleteOlderThan, [cutoff.toISOString()])
        : await this.query(EVENT_STORE_SQL.deleteOlderThanOnTopics, [cutoff.toISOString(), [...options.topics]]);
    return rowCount;
  }

  knownDown(): ComponentHealth | undefined {
    if (this.closed) return { status: 'down', detail: 'closed' };
    const breaker = this.settings.breaker;
    if (breaker && !breaker.isCallPermitted) {
      return {
        status: 'down',
        detail: `circuit breaker ${breaker.state}`,
        ...(breaker.lastError === undefined ? {} : { cause: breaker.lastError }),
      };
    }
    return undefined;
  }

  /** Probes the database first, so an unreachable server says why even before `init()` succeeded. */
  async health(): Promise<ComponentHealth> {
    const known = this.knownDown();
    if (known) return known;
    const breaker = this.settings.breaker;
    const ping = () =>
      withTimeout(
        this.database().then((db) => db.query(EVENT_STORE_SQL.ping)),
        this.settings.healthTimeoutMs,
        `no answer to SELECT 1 within ${this.settings.healthTimeoutMs} ms`,
      );
    try {
      await (breaker ? breaker.run(ping) : ping());
    } catch (error) {
      return { status: 'down', detail: 'the database does not answer', cause: describeError(error) };
    }
    return this.initialised ? { status: 'up' } : { status: 'down', detail: 'not initialised (migrations pending)' };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Let an in-flight init settle so release() never pulls the database from under a migration.
    await this.initialising?.catch(() => undefined);
    this.settings.breaker?.dispose();
    await this.release();
  }

  private async migrate(): Promise<void> {
    await runMigrations(await this.database(), this.settings.migrations);
    await this.migrated();
    this.initialised = true;
  }

  /** One statement, through the breaker when there is one. */
  private async query(text: string, params?: readonly unknown[]): Promise<SqlResult> {
    const db = await this.ready();
    const breaker = this.settings.breaker;
    return breaker ? breaker.run(() => db.query(text, params)) : db.query(text, params);
  }

  private async ready(): Promise<SqlDatabase> {
    if (this.closed) throw new Error(`${this.kind} event store is closed`);
    if (!this.initialised) throw new Error(`${this.kind} event store is not initialised: call init() first`);
    return this.database();
  }
}

/** The rows of a write as the parallel arrays of {@link ROWS}. */
function rowArrays(rows: readonly (EventRecord | PendingEvent)[]): unknown[][] {
  return [
    rows.map((row) => ('id' in row ? row.id : null)),
    rows.map((row) => row.key ?? null),
    rows.map((row) => row.topic),
    rows.map((row) => row.type),
    rows.map((row) => row.ts),
    // The publisher's bytes when it serialised the payload; undefined has no JSON form: JSON null.
    rows.map((row) => row.payloadJson ?? JSON.stringify(row.payload) ?? 'null'),
    rows.map((row) => row.critical),
  ];
}

/** Maps a row of {@link COLUMNS} back to a record; drivers differ on BIGINT (string vs number) and TIMESTAMPTZ. */
export function toEventRecord(row: Record<string, unknown>): EventRecord {
  return { id: toSafeInteger(row.id, 'id'), ...toDraft(row) };
}

/** {@link toEventRecord} without the id (a pending row has none). */
function toDraft(row: Record<string, unknown>): EventDraft {
  return {
    topic: String(row.topic),
    // The type passed the catalogue on the way in; the column only ever holds catalogue names.
    type: String(row.type) as EventType,
    ts: toIsoString(row.ts),
    payload: JSON.parse(String(row.payload)) as unknown,
    critical: row.critical === true,
  };
}

/** BIGINT → number, refusing values a number cannot hold exactly. */
export function toSafeInteger(value: unknown, what: string): number {
  const result = Number(value);
  if (!Number.isSafeInteger(result)) throw new Error(`${what} ${String(value)} is not a safe integer`);
  return result;
}

function toIsoString(value: unknown): string {
  const date = value instanceof Date ? value : new Date(String(value));
  if (Number.isNaN(date.getTime())) throw new Error(`invalid timestamp ${String(value)}`);
  return date.toISOString();
}

function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    // node-postgres surfaces "connection refused" on a dual-stack host as an AggregateError with an empty message.
    return error.errors.map(describeError).join('; ');
  }
  if (error instanceof Error) return error.message || (error as NodeJS.ErrnoException).code || error.name;
  return String(error);
}
