import { EventSource } from 'eventsource';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDevToken } from '../src/adapters/auth/dev-token.js';
import { expectJsonError } from './helpers/http-assertions.js';
import { hasRedisServer, startRedisProcess, type RedisProcess } from './helpers/redis-process.js';
import { createScratchDatabase, type ScratchDatabase } from './helpers/scratch-database.js';
import { startServerProcess, type ServerProcess } from './helpers/server-process.js';
import { requireService, TEST_DATABASE_URL } from './helpers/services.js';
import { ofType, openStream, published } from './helpers/sse-reader.js';
import { TEST_JWT_SECRET } from './helpers/test-app.js';

const available = hasRedisServer() && (await requireService('PostgreSQL', TEST_DATABASE_URL));
if (!hasRedisServer())
  console.warn('\n⚠️  SKIPPING Redis failure tests: no redis-server binary to start one of our own\n');

const token = (userId: string, scope?: string) =>
  signDevToken(TEST_JWT_SECRET, { userId, expiresIn: 3600, ...(scope ? { scope } : {}) });

const TOPIC = 'user:rr';

async function publish(url: string, title: string, critical = false): Promise<Response> {
  return fetch(`${url}/api/events`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${await token('publisher', 'events:publish')}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ topic: TOPIC, type: 'notification', payload: { title, level: 'info' }, critical }),
  });
}

async function accepted(url: string, title: string, critical = false): Promise<string> {
  const response = await publish(url, title, critical);
  const body = await response.text();
  if (response.status !== (critical ? 201 : 202)) throw new Error(`publish answered ${response.status}: ${body}`);
  return (JSON.parse(body) as { id: string }).id;
}

interface Ready {
  status: string;
  bus: { status: string; detail?: string };
}

async function readyz(url: string): Promise<{ code: number; body: Ready }> {
  const response = await fetch(`${url}/readyz`);
  return { code: response.status, body: (await response.json()) as Ready };
}

async function waitUntil(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** An auto-reconnecting client (the `eventsource` package): resumes with Last-Event-ID by itself. */
function follow(url: string, bearer: string) {
  const ids: string[] = [];
  const resets: { reason: string }[] = [];
  const resumes: { replayed: number; complete: boolean }[] = [];
  let opens = 0;
  const source = new EventSource(`${url}/api/sse/stream`, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${bearer}` } }),
  });
  source.addEventListener('open', () => opens++);
  source.addEventListener('notification', (event) => ids.push(event.lastEventId));
  source.addEventListener('stream.reset', (event) => resets.push(JSON.parse(event.data) as { reason: string }));
  source.addEventListener('stream.resumed', (event) => resumes.push(JSON.parse(event.data)));
  return { ids, resets, resumes, opens: () => opens, close: () => source.close() };
}

function expectIncreasing(ids: readonly string[]): void {
  for (let index = 1; index < ids.length; index++) {
    expect(BigInt(ids[index] ?? 0)).toBeGreaterThan(BigInt(ids[index - 1] ?? 0));
  }
}

describe.skipIf(!available)('Redis stopped and restarted under two real instances (own Redis)', () => {
  let redis: RedisProcess;
  let database: ScratchDatabase;
  const instances: ServerProcess[] = [];

  beforeAll(async () => {
    redis = await startRedisProcess();
    database = await createScratchDatabase();
    const env = {
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: `rr${randomBytes(4).toString('hex')}`,
      DATABASE_URL: database.url,
      RETRY_MS: '200',
      BREAKER_COOL_DOWN_MS: '500',
      BUS_PROBE_INTERVAL_MS: '250',
      BUS_PROBE_TIMEOUT_MS: '2000',
    };
    instances.push(...(await Promise.all([startServerProcess(env), startServerProcess(env)])));
  }, 120_000);

  afterAll(async () => {
    await Promise.all(instances.map((instance) => instance.stop('SIGTERM')));
    await redis?.stop();
    await database?.drop();
  });

  it('SHUTDOWN NOSAVE mid-stream: local delivery and degraded meanwhile, then ids still increase, critical events replay and live delivery is back', async () => {
    const [a, b] = instances;
    if (!a || !b) throw new Error('instances missing');
    const onA = follow(a.url, await token('rr'));
    const onB = follow(b.url, await token('rr'));
    await waitUntil(() => onA.opens() === 1 && onB.opens() === 1, 'both streams open');

    const before = [await accepted(b.url, 'one'), await accepted(a.url, 'two', true), await accepted(b.url, 'three')];
    await waitUntil(() => onA.ids.length === 3 && onB.ids.length === 3, 'delivery before the outage');
    expect(onA.ids).toEqual(before);

    await redis.shutdownNoSave();
    await waitUntil(async () => (await readyz(a.url)).body.status === 'degraded', 'A degraded');
    const down = await readyz(a.url);
    expect(down.code).toBe(200);
    expect(down.body.bus.detail).toMatch(/local delivery only/);

    // Local delivery: published on A, received by A's client, with an id above everything before.
    const local = await accepted(a.url, 'local while Redis is down');
    await waitUntil(() => onA.ids.includes(local), 'local delivery on A');
    expect(BigInt(local)).toBeGreaterThan(BigInt(before[2] ?? 0));
    // A critical event cannot be promised to every instance: refused loudly, not acknowledged.
    await expectJsonError(await publish(a.url, 'critical while Redis is down', true), 503, 'bus_unavailable');

    await redis.start();
    const restartedAt = Date.now();
    // Live delivery is back: an event published on B reaches the client on A (and B's own client).
    let back: string | undefined;
    await waitUntil(async () => {
      const id = await accepted(b.url, 'after the restart').catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (id !== undefined && onA.ids.includes(id) && onB.ids.includes(id)) back = id;
      return back !== undefined;
    }, 'live delivery across instances after the restart');
    const liveAfterMs = Date.now() - restartedAt;
    expect(liveAfterMs).toBeLessThan(10_000);
    await waitUntil(async () => (await readyz(a.url)).body.status === 'ok', 'A ready again');
    expect((await readyz(b.url)).body.status).toBe('ok');

    // Redis lost the hot log: each client was told so (stream.reset gap, complete: false) rather
    // than silently skipped, and ids never went backwards on either stream.
    expect(onA.resets).toContainEqual(expect.objectContaining({ reason: 'gap' }));
    expect(onA.resumes.some((resume) => !resume.complete)).toBe(true);
    // A's stream was ended to re-sync (the bus reported a live gap), which is not a failed replay.
    const metricsOnA = await (await fetch(`${a.url}/metrics`)).text();
    expect(metricsOnA).toMatch(/^sse_disconnects_total\{reason="resync"\} [1-9]/m);
    expect(metricsOnA).not.toMatch(/^sse_disconnects_total\{reason="replay_failed"\}/m);
    expectIncreasing(onA.ids);
    expectIncreasing(onB.ids);
    expect(BigInt(back ?? 0)).toBeGreaterThan(BigInt(local));

    // The critical event from before the restart is replayed from the store to a late resume.
    const late = await openStream(b.url, { token: await token('rr'), lastEventId: before[0] });
    await late.waitFor((events) => events.some((event) => event.event === 'stream.resumed'));
    expect(ofType(late.events, 'stream.reset')).toEqual([expect.objectContaining({ reason: 'gap' })]);
    expect(published(late.events).map((event) => event.id)).toContain(before[1]);
    expect(ofType(late.events, 'stream.resumed')).toEqual([expect.objectContaining({ complete: false })]);
    late.close();
    onA.close();
    onB.close();
    console.info(`live delivery back ${liveAfterMs} ms after Redis restarted`);
  }, 90_000);

  it('tells each stream and poll on an instance that lost Redis, before the first event it publishes alone', async () => {
    const [a] = instances;
    if (!a) throw new Error('instances missing');
    await waitUntil(async () => (await readyz(a.url)).body.status === 'ok', 'A ready');
    const stream = await openStream(a.url, { token: await token('rr') });
    const before = await accepted(a.url, 'before the outage');
    await stream.waitFor((events) => published(events).some((event) => event.id === before));

    await redis.stop();
    await waitUntil(async () => (await readyz(a.url)).body.status === 'degraded', 'A degraded');
    const alone = await accepted(a.url, 'published on A alone');
    await stream.waitFor((events) => published(events).some((event) => event.id === alone));
    // Its id may pass over events of the other instance that this stream will never get: told first.
    const resetAt = stream.events.findIndex((event) => event.event === 'stream.reset');
    expect(resetAt).toBeGreaterThan(-1);
    expect(resetAt).toBeLessThan(stream.events.findIndex((event) => event.id === alone));
    const [reset] = ofType<{ reason: string; since: string }>(stream.events, 'stream.reset');
    expect(reset?.reason).toBe('gap');
    expect(BigInt(reset?.since ?? 0)).toBeGreaterThanOrEqual(BigInt(before));
    // A poller is told in the same answer that carries the event.
    const poll = await fetch(`${a.url}/api/sse/poll?after=${before}&timeoutMs=0`, {
      headers: { authorization: `Bearer ${await token('rr')}` },
    });
    const answer = (await poll.json()) as { events: { id: string }[]; reset?: { reason: string } };
    expect(answer.events.map((event) => event.id)).toEqual([alone]);
    expect(answer.reset).toMatchObject({ reason: 'gap' });
    stream.close();

    await redis.start();
    await waitUntil(async () => (await readyz(a.url)).body.status === 'ok', 'A ready again');
  }, 60_000);

  it('resumes an id another instance issued alone with stream.reset {gap}, never unknown_id, before and after the rejoin', async () => {
    const [a, b] = instances;
    if (!a || !b) throw new Error('instances missing');
    // Both back from the previous case's outage (it waited for A only): B answers 503 until it has
    // rejoined, and this publish is the one made before the outage.
    await waitUntil(async () => (await readyz(a.url)).body.status === 'ok', 'A ready');
    await waitUntil(async () => (await readyz(b.url)).body.status === 'ok', 'B ready');
    // The client whose id A issues alone: it got everything before the outage on A.
    const onA = await openStream(a.url, { token: await token('rr') });
    const critical = await accepted(b.url, 'critical before the outage', true);
    await onA.waitFor((events) => published(events).some((event) => event.id === critical));

    await redis.stop();
    // Both must know: a publish on an instance that has not noticed yet is a 503 (the command
    // failed on the dead connection), not a publish alone.
    await waitUntil(async () => (await readyz(a.url)).body.status === 'degraded', 'A degraded');
    await waitUntil(async () => (await readyz(b.url)).body.status === 'degraded', 'B degraded');
    // Both serve alone: B publishes, then A. The client on A never gets B's event.
    await accepted(b.url, 'published on B alone, before');
    // An id of the cluster's own that B has never seen (above or below B's head: ids issued alone
    // go on from when each instance lost Redis, not from the clock).
    const alone = await accepted(a.url, 'published on A alone');
    await onA.waitFor((events) => published(events).some((event) => event.id === alone));
    onA.close();
    const resumeOnB = async () => {
      const stream = await openStream(b.url, { token: await token('rr'), lastEventId: alone });
      await stream.waitFor((events) => events.some((event) => event.event === 'stream.resumed'));
      stream.close();
      // (B may also tell the stream of its own outage: a gap too.)
      const resets = ofType<{ reason: string }>(stream.events, 'stream.reset');
      expect(resets.length).toBeGreaterThan(0);
      expect(resets.map((reset) => reset.reason)).toEqual(resets.map(() => 'gap'));
      expect(ofType(stream.events, 'stream.resumed')).toEqual([expect.objectContaining({ complete: false })]);
      // Nothing at or below the resume point comes back (B's event may be above it, though B
      // published first).
      const ids = published(stream.events).map((event) => event.id);
      expect(BigInt(critical)).toBeLessThan(BigInt(alone));
      expect(ids.filter((id) => BigInt(id ?? 0) <= BigInt(alone))).toEqual([]);
    };
    // B is cut off too (its own island), as in the moments before Redis returns.
    await resumeOnB();
    // B's head passes it: still a gap (the client missed B's earlier event, and whatever A
    // published after it), though B now has an event after it to replay.
    await accepted(b.url, 'published on B alone, after');
    await resumeOnB();
    const poll = await fetch(`${b.url}/api/sse/poll?after=${alone}&timeoutMs=0`, {
      headers: { authorization: `Bearer ${await token('rr')}` },
    });
    expect(((await poll.json()) as { reset?: { reason: string } }).reset).toMatchObject({ reason: 'gap' });

    await redis.start();
    await waitUntil(async () => (await readyz(a.url)).body.status === 'ok', 'A ready again');
    await waitUntil(async () => (await readyz(b.url)).body.status === 'ok', 'B ready again');
    await resumeOnB();
  }, 60_000);
});
