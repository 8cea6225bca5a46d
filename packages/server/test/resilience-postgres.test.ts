import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDevToken } from '../src/adapters/auth/dev-token.js';
import { expectJsonError } from './helpers/http-assertions.js';
import { findPostgresBinaries, startPostgresProcess, type PostgresProcess } from './helpers/postgres-process.js';
import { startServerProcess, type ServerProcess } from './helpers/server-process.js';
import { openStream, published } from './helpers/sse-reader.js';
import { TEST_JWT_SECRET } from './helpers/test-app.js';

const available = findPostgresBinaries() !== undefined;
if (!available)
  console.warn('\n⚠️  SKIPPING PostgreSQL failure tests: no PostgreSQL binaries to start a server of our own\n');

const token = (userId: string, scope?: string) =>
  signDevToken(TEST_JWT_SECRET, { userId, expiresIn: 3600, ...(scope ? { scope } : {}) });

async function publish(url: string, title: string, critical: boolean): Promise<Response> {
  return fetch(`${url}/api/events`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${await token('publisher', 'events:publish')}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ topic: 'user:pg', type: 'notification', payload: { title, level: 'info' }, critical }),
  });
}

async function readyz(url: string): Promise<{ code: number; body: { status: string; store: { status: string } } }> {
  const response = await fetch(`${url}/readyz`);
  return { code: response.status, body: (await response.json()) as { status: string; store: { status: string } } };
}

async function breakerState(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((entry) => entry.startsWith('dependency_breaker_state{dependency="postgres"} '));
  return Number(line?.split(' ')[1] ?? NaN);
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.skipIf(!available)('PostgreSQL stopped and started again (own server, real server process)', () => {
  let database: PostgresProcess;
  let server: ServerProcess;

  beforeAll(async () => {
    database = await startPostgresProcess();
    server = await startServerProcess({
      DATABASE_URL: database.url,
      BREAKER_FAILURE_THRESHOLD: '2',
      BREAKER_COOL_DOWN_MS: '500',
    });
  }, 120_000);

  afterAll(async () => {
    await server?.stop('SIGTERM');
    await database?.remove();
  });

  it('answers 503 to critical publishes while it is down, keeps live delivery, recovers, and loses nothing acknowledged', async () => {
    const stream = await openStream(server.url, { token: await token('pg') });
    const acknowledged: string[] = [];
    const before = await publish(server.url, 'before', true);
    expect(before.status).toBe(201);
    acknowledged.push(((await before.json()) as { id: string }).id);
    expect(await readyz(server.url)).toMatchObject({ code: 200, body: { status: 'ok', store: { status: 'up' } } });
    expect(await breakerState(server.url)).toBe(0);

    await database.stop('SIGINT');
    // Loudly refused, never acknowledged: the first attempts reach the dead server, then the breaker
    // opens and answers without trying.
    for (let attempt = 0; attempt < 4; attempt++) {
      await expectJsonError(await publish(server.url, `down ${attempt}`, true), 503, 'store_unavailable');
    }
    expect(await breakerState(server.url)).toBe(2);
    // The instance still serves: degraded, not out of rotation; non-critical events flow live.
    expect(await readyz(server.url)).toMatchObject({
      code: 200,
      body: { status: 'degraded', store: { status: 'down' } },
    });
    const live = await publish(server.url, 'live while down', false);
    expect(live.status).toBe(202);
    const liveId = ((await live.json()) as { id: string }).id;
    await stream.waitFor((events) => published(events).some((event) => event.id === liveId));

    await database.start();
    // Back within a cool-down or two: every answer meanwhile is 201 or 503, nothing in between.
    let attempt = 0;
    await eventually(async () => {
      const response = await publish(server.url, `after ${attempt++}`, true);
      expect([201, 503]).toContain(response.status);
      if (response.status !== 201) return false;
      acknowledged.push(((await response.json()) as { id: string }).id);
      return true;
    }, 'a critical publish to be stored again');
    expect(await breakerState(server.url)).toBe(0);
    expect(await readyz(server.url)).toMatchObject({ code: 200, body: { status: 'ok' } });

    // Every acknowledged event is in the store, and was delivered live.
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ id: string }>('SELECT id::text AS id FROM events ORDER BY id');
      expect(rows.map((row) => row.id)).toEqual(acknowledged);
    } finally {
      await client.end();
    }
    await stream.waitFor((events) => acknowledged.every((id) => published(events).some((event) => event.id === id)));
    // And nothing answered 503 reached anyone: critical events are stored before they are visible.
    const titles = published(stream.events).map(
      (event) => (JSON.parse(event.data) as { payload: { title: string } }).payload.title,
    );
    expect(titles.filter((title) => title.startsWith('down'))).toEqual([]);
    stream.close();
  }, 90_000);
});
