import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { startFreezableProxy, type FreezableProxy } from '../../../test/helpers/freezable-proxy.js';
import { hasRedisServer, startRedisProcess, type RedisProcess } from '../../../test/helpers/redis-process.js';
import { ID_SLOTS } from '../../core/event-id.js';
import type { BreakerState } from '../../core/circuit-breaker.js';
import { RedisEventBus, redisBusKeys, type RedisEventBusOptions } from './redis-event-bus.js';
import { notificationDraft, waitUntil } from '../../../test/helpers/bus-events.js';

const available = hasRedisServer();

/** A `notification` draft on `topic`. */
const draft = (topic: string, critical = false) => notificationDraft(topic, 'x', critical);

/** A started bus with ids above now, closed by the suite's `afterEach` (it is added to `open`). */
async function startedBus(open: RedisEventBus[], options: RedisEventBusOptions): Promise<RedisEventBus> {
  const bus = new RedisEventBus(options);
  open.push(bus);
  const floor = Date.now() * 1000;
  await bus.start({ idFloor: floor, coveredFrom: floor });
  return bus;
}

/**
 * One instance (A) loses Redis while another (B) keeps it: A's path to its own Redis goes through
 * a proxy that black-holes it, so A's commands time out and its breaker opens, as with a Redis
 * that hangs or a network that drops packets.
 */
describe.skipIf(!available)('RedisEventBus when Redis is unreachable from one instance (own Redis)', () => {
  let redis: RedisProcess;
  let proxy: FreezableProxy;
  const open: RedisEventBus[] = [];

  const started = (url: string, overrides: Partial<RedisEventBusOptions>) =>
    startedBus(open, { url, limits: { maxEvents: 100, maxAgeMs: 3_600_000 }, keyPrefix: 'po', ...overrides });

  beforeAll(async () => {
    redis = await startRedisProcess();
    proxy = await startFreezableProxy(redis.port);
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((bus) => bus.close()));
  });
  afterAll(async () => {
    await proxy?.close();
    await redis?.stop();
  });

  /**
   * A bus (A) whose connections go through the proxy, and one (B) straight to Redis. A finds Redis
   * unreachable fast: two commands unanswered within 200 ms each open its breaker.
   */
  async function pair(
    name: string,
    breaker: Partial<NonNullable<RedisEventBusOptions['breaker']>> = {},
    onA: Partial<RedisEventBusOptions> = {},
    onB: Partial<RedisEventBusOptions> = {},
  ): Promise<[RedisEventBus, RedisEventBus]> {
    const a = await started(`redis://127.0.0.1:${proxy.port}`, {
      connectionName: `${name}-a`,
      commandTimeoutMs: 200,
      breaker: { failureThreshold: 2, coolDownMs: 200, ...breaker },
      ...onA,
    });
    return [a, await started(redis.url, { connectionName: `${name}-b`, ...onB })];
  }

  /**
   * Black-holes the connections named `client…` and publishes on `bus` until its breaker opens:
   * two publishes sent and never answered (outcome unknown: refused rather than delivered twice).
   */
  async function blackHole(bus: RedisEventBus, client: string, topic: string): Promise<void> {
    proxy.freeze(client);
    await expect(bus.publish(draft(topic))).rejects.toThrow(/no answer from Redis/);
    await expect(bus.publish(draft(topic))).rejects.toThrow(/no answer from Redis/);
  }

  it('opens its breaker, delivers locally, refuses critical events, then rejoins with an honest gap everywhere', async () => {
    const states: BreakerState[] = [];
    const gapsOnA = vi.fn();
    const gapsOnB = vi.fn();
    const [a, b] = await pair(
      'bus',
      { onStateChange: (state) => states.push(state) },
      { onLiveGap: gapsOnA },
      { onLiveGap: gapsOnB },
    );
    const seenByA: number[] = [];
    const seenByB: number[] = [];
    await a.subscribe('t', (event) => seenByA.push(event.id));
    await b.subscribe('t', (event) => seenByB.push(event.id));
    const first = await b.publish(draft('t'));
    await waitUntil(() => seenByA.length === 1 && seenByB.length === 1);

    await blackHole(a, 'bus-a:', 't');
    expect(states.at(-1)).toBe('open');
    // Open: nothing is sent any more; delivered here only, with an id above everything A knew.
    const local = await a.publish(draft('t'));
    expect(local.id).toBeGreaterThan(first.id);
    expect(seenByA).toEqual([first.id, local.id]);
    await expect(a.publish(draft('t', true))).rejects.toThrow(/critical events are refused/);
    expect(await a.health()).toMatchObject({
      status: 'degraded',
      detail: expect.stringMatching(/local delivery only/),
    });
    expect(await a.headId()).toBe(local.id);
    // Reads answer from what this island knows: exact from where A stood, a gap from before.
    expect(await a.read(['t'], first.id, 10)).toMatchObject({ events: [local], gapTopics: [] });
    expect((await a.read(['t'], first.id - 1, 10)).gapTopics).toEqual(['t']);
    expect((await a.read(['t'], local.id, 10)).gapTopics).toEqual([]);
    // B, on the other side, goes on; A does not see it.
    const onB = await b.publish(draft('t'));
    // A reader of A's island that comes to B: B's log never had A's id, nor A's reader B's event.
    expect((await b.read(['t', 'other'], local.id, 10)).gapTopics).toEqual(['t', 'other']);
    await waitUntil(() => seenByB.length === 2);
    expect(seenByB).not.toContain(local.id);

    proxy.thaw();
    // Back: A re-reads the log (gets B's event), marks the topic it published on and tells B.
    await waitUntil(async () => (await a.health()).status === 'up');
    expect(seenByA).toContain(onB.id);
    await waitUntil(() => gapsOnB.mock.calls.length === 1);
    expect(gapsOnB).toHaveBeenCalledWith('t');
    expect(gapsOnA).toHaveBeenCalledWith('t');
    // Anyone resuming from before the rejoin on that topic is told something may be missing.
    expect((await b.read(['t'], onB.id, 10)).gapTopics).toEqual(['t']);
    expect((await b.read(['other'], first.id, 10)).gapTopics).toEqual([]);
    // And live delivery is one id space again, above every id of the outage.
    const after = await a.publish(draft('t'));
    expect(after.id).toBeGreaterThan(Math.max(local.id, onB.id));
    await waitUntil(() => seenByA.at(-1) === after.id && seenByB.at(-1) === after.id);
    expect((await b.read(['t'], onB.id, 10)).events.map((event) => event.id)).toEqual([after.id]);
    expect(states.at(-1)).toBe('closed');
  }, 30_000);

  it('stops publishing alone once Redis serves the other instances again: a local id would pass over their events', async () => {
    const [a, b] = await pair('part', { coolDownMs: 60_000 });
    const seenByA: number[] = [];
    const fromOthers: number[] = [];
    await a.subscribe('p', (event) => seenByA.push(event.id));
    await a.subscribe('q', (event) => fromOthers.push(event.id));
    // Only A's commands are cut (as when its side of a failover lags): its subscriber still hears Redis.
    await blackHole(a, 'part-a:cmd', 'p');
    const local = await a.publish(draft('p'));
    expect(seenByA).toEqual([local.id]);
    expect((await a.read(['p'], local.id, 10)).gapTopics).toEqual([]);
    const fromB = await b.publish(draft('q'));
    await waitUntil(() => fromOthers.includes(fromB.id));
    await expect(a.publish(draft('p'))).rejects.toThrow(/serves the other instances again/);
    // What A heard from Redis has holes (what came before its subscriber was back): no exact resume.
    expect((await a.read(['p'], local.id, 10)).gapTopics).toEqual(['p']);
    proxy.thaw();
  }, 30_000);

  it("keeps its local ids below the others' events published since the outage began: its streams get those at the rejoin", async () => {
    const [a, b] = await pair('below');
    const seenByA: number[] = [];
    await a.subscribe('k', (event) => seenByA.push(event.id));
    await blackHole(a, 'below-a:', 'k');
    const first = await a.publish(draft('k'));
    // B goes on in Redis, later by the clock; A, not hearing it, publishes after it.
    await new Promise((resolve) => setTimeout(resolve, 20));
    const critical = await b.publish(draft('k', true));
    const local = await a.publish(draft('k'));
    expect(local.id).toBeLessThan(critical.id);
    // A reader that comes to A from B's event shows Redis serves B: A's next id could pass over it.
    expect((await a.read(['k'], critical.id, 10)).gapTopics).toEqual(['k']);
    await expect(a.publish(draft('k'))).rejects.toThrow(/serves the other instances again/);
    proxy.thaw();
    await waitUntil(async () => (await a.health()).status === 'up');
    // The critical event reached A's stream, in one increasing order with A's own.
    expect(seenByA).toEqual([first.id, local.id, critical.id]);
  }, 30_000);

  it('keeps an event Redis published before a rejoin readable: the rejoin tells the gap and hides nothing the log holds', async () => {
    const [a, b] = await pair('mark');
    const first = await b.publish(draft('m'));
    await blackHole(a, 'mark-a:', 'm');
    // A serves 'm' alone; B goes on in Redis with a critical event, below the mark A's rejoin sets.
    await a.publish(draft('m'));
    const critical = await b.publish(draft('m', true));
    proxy.thaw();
    await waitUntil(async () => (await a.health()).status === 'up');
    // A reader from before the rejoin gets the gap, and still every event the log holds.
    for (const bus of [a, b]) {
      const read = await bus.read(['m'], first.id, 10);
      expect(read.gapTopics).toEqual(['m']);
      expect(read.events.map((event) => event.id)).toEqual([critical.id]);
    }
  }, 30_000);
});

/** Two instances cut off from Redis at once (their own Redis, stopped), publishing side by side. */
describe.skipIf(!available)('RedisEventBus ids while Redis is down (own Redis, stopped)', () => {
  let redis: RedisProcess;
  const open: RedisEventBus[] = [];

  const started = (prefix: string, overrides: Partial<RedisEventBusOptions> = {}) =>
    startedBus(open, {
      url: redis.url,
      limits: { maxEvents: 1_000, maxAgeMs: 3_600_000 },
      keyPrefix: prefix,
      commandTimeoutMs: 500,
      // Reconnect attempts close together, so the rejoin is prompt once Redis is back.
      redisOptions: { retryStrategy: () => 100 },
      ...overrides,
    });

  /**
   * Both connections gone, not only the subscriber: a publish while the command connection still
   * looks ready goes to Redis (and fails there, an unknown outcome) instead of being served locally.
   */
  const cutOff = async (bus: RedisEventBus) => /command connection (?!ready)/.test((await bus.health()).detail ?? '');

  beforeEach(async () => {
    redis = await startRedisProcess();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((bus) => bus.close()));
    await redis?.stop();
  });

  it('never gives one id to two events, even when both instances publish in the same instant, and rejoins above them all', async () => {
    const a = await started('ids');
    const b = await started('ids');
    const before = await a.publish(draft('t'));
    await waitUntil(async () => (await b.headId()) >= before.id);
    await redis.stop();
    await waitUntil(async () => (await cutOff(a)) && (await cutOff(b)));
    const fromA: number[] = [];
    const fromB: number[] = [];
    for (let pair = 0; pair < 40; pair++) {
      const [onA, onB] = await Promise.all([a.publish(draft('t')), b.publish(draft(`u${pair % 3}`))]);
      fromA.push(onA.id);
      fromB.push(onB.id);
    }
    const all = [...fromA, ...fromB];
    expect(new Set(all).size).toBe(all.length);
    for (const ids of [fromA, fromB]) {
      for (let index = 1; index < ids.length; index++) expect(ids[index]).toBeGreaterThan(ids[index - 1] ?? 0);
      expect(ids[0]).toBeGreaterThan(before.id);
      expect(ids.every((id) => String(id).length <= 64 && Number.isSafeInteger(id))).toBe(true);
    }
    // Redis comes back empty; once both have rejoined, its counter is above every id issued meanwhile.
    await redis.start();
    await waitUntil(async () => (await a.health()).status === 'up' && (await b.health()).status === 'up', 20_000);
    const next = await a.publish(draft('t'));
    expect(next.id).toBeGreaterThan(Math.max(...all));
  }, 60_000);

  it('keeps its local ids below what Redis issues to the instances that reconnect first: its streams get those at the rejoin', async () => {
    const a = await started('back', { connectionName: 'back-a', redisOptions: { retryStrategy: () => 3_000 } });
    const b = await started('back', { connectionName: 'back-b' });
    const seenByA: number[] = [];
    await a.subscribe('t', (event) => seenByA.push(event.id));
    const before = await b.publish(draft('t'));
    await waitUntil(() => seenByA.includes(before.id));
    await redis.stop();
    await waitUntil(async () => (await cutOff(a)) && (await cutOff(b)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    await redis.start();
    // B is back first (A retries in 3 s) and publishes a critical event; A, still alone, publishes after it.
    await waitUntil(async () => (await b.health()).status === 'up', 20_000);
    const critical = await b.publish(draft('t', true));
    expect((await a.health()).status).toBe('degraded');
    const local = await a.publish(draft('t'));
    expect(local.id).toBeLessThan(critical.id);
    await waitUntil(async () => (await a.health()).status === 'up', 20_000);
    // Its stream got the critical event at the rejoin, in one increasing order with its own.
    expect(seenByA).toEqual([before.id, local.id, critical.id]);
  }, 60_000);

  it('refuses local publishes without an id slot: when none was free, or when its lease may have run out', async () => {
    const admin = new Redis(redis.url);
    try {
      // Every slot leased to others for an hour.
      const until = String(Date.now() + 3_600_000);
      const leases = Array.from({ length: ID_SLOTS - 1 }, (_, index) => [String(index + 1), `other|${until}`]);
      await admin.hset(redisBusKeys('full').slots, Object.fromEntries(leases));
    } finally {
      admin.disconnect();
    }
    const slotless = await started('full');
    const leased = await started('short', { idSlotTtlMs: 1_000 });
    await redis.stop();
    await waitUntil(async () => (await cutOff(slotless)) && (await cutOff(leased)));
    await expect(slotless.publish(draft('t'))).rejects.toThrow(/no id slot/);
    // Within its lease (renewed every third of it while connected): local delivery works.
    expect((await leased.publish(draft('t'))).id % ID_SLOTS).not.toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await expect(leased.publish(draft('t'))).rejects.toThrow(/no id slot/);
  }, 30_000);
});
