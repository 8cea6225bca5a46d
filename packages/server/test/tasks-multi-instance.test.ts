import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDevToken } from '../src/adapters/auth/dev-token.js';
import { callAs, pollUntil } from './helpers/api-call.js';
import { createScratchDatabase, type ScratchDatabase } from './helpers/scratch-database.js';
import { startServerProcess, type ServerProcess } from './helpers/server-process.js';
import { requireService, TEST_DATABASE_URL, TEST_REDIS_URL } from './helpers/services.js';
import { openStream, published } from './helpers/sse-reader.js';
import { TEST_JWT_SECRET } from './helpers/test-app.js';

const available =
  (await requireService('Redis', TEST_REDIS_URL)) && (await requireService('PostgreSQL', TEST_DATABASE_URL));

const token = (userId: string) => signDevToken(TEST_JWT_SECRET, { userId, expiresIn: 3600 });
const call = (url: string, route: string, body?: unknown) => callAs(url, 'tmi', route, body);
const until = pollUntil;

describe.skipIf(!available)('tasks on two real instances (Redis + PostgreSQL)', () => {
  let database: ScratchDatabase;
  const instances: ServerProcess[] = [];
  const prefix = `tmi${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    database = await createScratchDatabase();
    const env = { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: prefix, DATABASE_URL: database.url };
    instances.push(...(await Promise.all([startServerProcess(env), startServerProcess(env)])));
  }, 120_000);

  afterAll(async () => {
    await Promise.all(instances.map((instance) => instance.stop('SIGTERM')));
    await database?.drop();
  });

  it('GET answers from either instance, and a cancel landing on the other one stops the task', async () => {
    const [a, b] = instances;
    if (!a || !b) throw new Error('instances missing');
    const stream = await openStream(b.url, { token: await token('tmi') });
    await stream.waitFor((events) => events.some((event) => event.event === 'connection.established'));

    const done = await call(a.url, 'POST /api/tasks', { kind: 'demo', input: { stages: 2, stageMs: 300 } });
    expect(done.status).toBe(202);
    const doneId = done.body['taskId'] as string;
    let lastPercent = 0;
    await until(async () => {
      const view = (await call(b.url, `GET /api/tasks/${doneId}`)).body;
      expect(view['kind']).toBe('demo');
      expect(view['percent'] as number).toBeGreaterThanOrEqual(lastPercent);
      lastPercent = view['percent'] as number;
      return view['status'] === 'completed';
    }, 'completed, seen from B');
    expect((await call(b.url, `GET /api/tasks/${doneId}`)).body).toMatchObject({ percent: 100, result: { stages: 2 } });

    const slow = await call(a.url, 'POST /api/tasks', { kind: 'demo', input: { stages: 2, stageMs: 10_000 } });
    const slowId = slow.body['taskId'] as string;
    await until(
      async () => ((await call(b.url, `GET /api/tasks/${slowId}`)).body['percent'] as number) > 0,
      'progress, seen from B',
    );
    expect((await call(b.url, `GET /api/tasks/${slowId}`)).body['status']).toBe('running');
    expect((await call(b.url, `POST /api/tasks/${slowId}/cancel`)).status).toBe(202);
    await until(
      async () => (await call(a.url, `GET /api/tasks/${slowId}`)).body['status'] === 'cancelled',
      'cancelled on A',
    );
    // On the wire (through Redis): one outcome. A progress update A had in flight when B's cancel
    // was published may follow it (as with generations); nothing more.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const ofSlow = published(stream.events).filter(
      (event) => (JSON.parse(event.data) as { payload: { taskId?: string } }).payload.taskId === slowId,
    );
    expect(ofSlow.filter((event) => event.event === 'task.cancelled')).toHaveLength(1);
    const cancelledAt = ofSlow.findIndex((event) => event.event === 'task.cancelled');
    expect(ofSlow.slice(cancelledAt + 1).length).toBeLessThanOrEqual(1);
    stream.close();
  }, 120_000);
});
