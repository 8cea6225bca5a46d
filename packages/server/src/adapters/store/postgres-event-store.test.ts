import { randomBytes } from 'node:crypto';
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { requireService, TEST_DATABASE_URL } from '../../../test/helpers/services.js';
import { describeEventStoreContract, storedEvent } from './event-store.contract.js';
import { describeConversationStoreContract } from './conversation-store.contract.js';
import { loadMigrations } from './migrations.js';
import { PostgresEventStore } from './postgres-event-store.js';

const available = await requireService('PostgreSQL', TEST_DATABASE_URL);

/** Schemas this run created; all dropped at the end, so runs never see each other's rows. */
const schemas = new Set<string>();
const freshSchema = (): string => {
  const schema = `test_${randomBytes(6).toString('hex')}`;
  schemas.add(schema);
  return schema;
};

async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

describe.skipIf(!available)('PostgresEventStore', () => {
  afterAll(async () => {
    if (schemas.size === 0) return;
    await withAdmin(async (client) => {
      for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    });
  });

  let lastSchema = '';
  const openStore = async (schema: string): Promise<PostgresEventStore> => {
    const store = new PostgresEventStore({ connectionString: TEST_DATABASE_URL, schema, poolSize: 4 });
    await store.init();
    return store;
  };

  describeEventStoreContract('PostgreSQL', {
    create: () => {
      lastSchema = freshSchema();
      return openStore(lastSchema);
    },
    reopen: () => openStore(lastSchema),
  });

  describeConversationStoreContract('PostgreSQL', { create: () => openStore(freshSchema()) });

  it('survives PostgreSQL dropping its connections: logs, then reconnects on the next use', async () => {
    const applicationName = `store-test-${randomBytes(4).toString('hex')}`;
    const warn = vi.fn();
    const store = new PostgresEventStore({
      connectionString: TEST_DATABASE_URL,
      schema: freshSchema(),
      applicationName,
      logger: { warn },
    });
    try {
      await store.init();
      await store.append(storedEvent(1)); // leaves an idle pooled connection behind
      await withAdmin((client) =>
        client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [
          applicationName,
        ]),
      );
      await vi.waitFor(() => expect(warn).toHaveBeenCalled());
      expect(await store.maxId()).toBe(1);
      expect(await store.health()).toEqual({ status: 'up' });
    } finally {
      await store.close();
    }
  });

  describe('migrations', () => {
    let expectedVersions: string[];
    beforeAll(async () => {
      expectedVersions = (await loadMigrations()).map((m) => m.version);
    });

    it('applies them exactly once when two instances init() on the same fresh schema at once', async () => {
      const schema = freshSchema();
      const stores = [0, 1, 2].map(
        () => new PostgresEventStore({ connectionString: TEST_DATABASE_URL, schema, poolSize: 2 }),
      );
      try {
        await Promise.all(stores.map((store) => store.init()));
        const { rows } = await withAdmin((client) =>
          client.query<{ version: string }>(`SELECT version FROM ${schema}.schema_migrations ORDER BY version`),
        );
        expect(rows.map((row) => row.version)).toEqual(expectedVersions);
        // Both see the same tables: a write through one is read through the other.
        await stores[0]?.append(storedEvent(1));
        expect(await stores[1]?.maxId()).toBe(1);
      } finally {
        await Promise.all(stores.map((store) => store.close()));
      }
    });

    it('puts the tables in the configured schema only', async () => {
      const schema = freshSchema();
      const store = await openStore(schema);
      await store.close();
      const { rows } = await withAdmin((client) =>
        client.query<{ table_name: string }>(
          `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`,
          [schema],
        ),
      );
      expect(rows.map((row) => row.table_name)).toEqual([
        'conversation_turns',
        'conversations',
        'events',
        'realtime_meta',
        'schema_migrations',
      ]);
    });
  });
});

describe('PostgresEventStore without a server', () => {
  it('reports down (never throws) when PostgreSQL is unreachable, and init() rejects', async () => {
    const store = new PostgresEventStore({
      connectionString: 'postgres://postgres@127.0.0.1:1/test',
      schema: 'test_x',
    });
    try {
      await expect(store.init()).rejects.toThrow();
      const health = await store.health();
      expect(health.status).toBe('down');
      // The raw error is the cause (logged by /readyz), not the detail it serves.
      expect(health.detail).toBe('the database does not answer');
      expect(health.cause).toMatch(/ECONNREFUSED/);
    } finally {
      await store.close();
    }
  });

  it('reports down within the health timeout when the server never answers', async () => {
    // A listening socket that accepts and then says nothing: the probe must time out, not hang.
    const sockets: net.Socket[] = [];
    const server = net.createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    const store = new PostgresEventStore({
      connectionString: `postgres://postgres@127.0.0.1:${port}/test`,
      healthTimeoutMs: 200,
      connectTimeoutMs: 10_000,
    });
    try {
      const started = Date.now();
      const health = await store.health();
      expect(health).toEqual({
        status: 'down',
        detail: 'the database does not answer',
        cause: 'no answer to SELECT 1 within 200 ms',
      });
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      for (const socket of sockets) socket.destroy();
      await store.close().catch(() => undefined);
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('rejects schema names that are not plain identifiers', () => {
    expect(() => new PostgresEventStore({ connectionString: TEST_DATABASE_URL, schema: 'x; DROP TABLE y' })).toThrow(
      /invalid schema name/,
    );
  });
});
