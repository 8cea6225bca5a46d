import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDevToken } from '../src/auth/dev-token.js';
import { createScratchDatabase, type ScratchDatabase } from './helpers/scratch-database.js';
import { startServerProcess, type ServerProcess } from './helpers/server-process.js';
import { requireService, TEST_DATABASE_URL, TEST_REDIS_URL } from './helpers/services.js';
import { ofType, openStream, published } from './helpers/sse-reader.js';
import { TEST_JWT_SECRET } from './helpers/test-app.js';

const available =
  (await requireService('Redis', TEST_REDIS_URL)) && (await requireService('PostgreSQL', TEST_DATABASE_URL));

const token = (userId: string, scope?: string) =>
  signDevToken(TEST_JWT_SECRET, { userId, expiresIn: 3600, ...(scope ? { scope } : {}) });

async function publish(url: string, title: string, critical = false): Promise<string> {
  const response = await fetch(`${url}/api/events`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${await token('publisher', 'events:publish')}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ topic: 'user:mi', type: 'notification', payload: { title, level: 'info' }, critical }),
  });
  expect(response.status).toBe(critical ? 201 : 202);
  return ((await response.json()) as { id: string }).id;
}

describe.skipIf(!available)('several real instances on Redis + PostgreSQL', () => {
  let database: ScratchDatabase;
  const instances: ServerProcess[] = [];
  const prefix = `mi${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    database = await createScratchDatabase();
    const env = { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: prefix, DATABASE_URL: database.url };
    // Started together: the migration lock must keep them from racing.
    instances.push(...(await Promise.all([startServerProcess(env), startServerProcess(env)])));
  }, 120_000);

  afterAll(async () => {
    await Promise.all(instances.map((instance) => instance.stop('SIGTERM')));
    await database?.drop();
  });

  it('delivers across instances, resumes on another one, and survives kill -9 of the one a client is on', async () => {
    const [a, b] = instances;
    if (!a || !b) throw new Error('instances missing');
    for (const instance of instances) {
      const ready = (await (await fetch(`${instance.url}/readyz`)).json()) as Record<string, { kind: string }>;
      expect(ready['bus']?.kind).toBe('redis');
      expect(ready['store']?.kind).toBe('postgres');
    }

    const onA = await openStream(a.url, { token: await token('mi') });
    const first = [await publish(b.url, 'one'), await publish(a.url, 'two', true), await publish(b.url, 'three')];
    await onA.waitFor((events) => published(events).length === 3);
    expect(published(onA.events).map((event) => event.id)).toEqual(first);
    expect(BigInt(first[1] ?? 0)).toBeGreaterThan(BigInt(first[0] ?? 0));

    // The instance the client is on dies; it resumes on the other one and misses nothing.
    await a.stop('SIGKILL');
    const whileDown = [await publish(b.url, 'four'), await publish(b.url, 'five', true)];
    const onB = await openStream(b.url, { token: await token('mi'), lastEventId: first.at(-1) ?? '' });
    await onB.waitFor((events) => events.some((event) => event.event === 'stream.resumed'));
    expect(published(onB.events).map((event) => event.id)).toEqual(whileDown);
    expect(ofType(onB.events, 'stream.resumed')).toEqual([{ replayed: 2, complete: true }]);
    const live = await publish(b.url, 'six');
    await onB.waitFor((events) => published(events).some((event) => event.id === live));
    onA.close();
    onB.close();
  }, 120_000);
});
