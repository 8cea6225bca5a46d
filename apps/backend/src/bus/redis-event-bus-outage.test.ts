import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startFreezableProxy, type FreezableProxy } from '../../test/helpers/freezable-proxy.js';
import { hasRedisServer, startRedisProcess, type RedisProcess } from '../../test/helpers/redis-process.js';
import type { EventDraft } from '../events/event-record.js';
import type { BreakerState } from '../resilience/circuit-breaker.js';
import { RedisEventBus, type RedisEventBusOptions } from './redis-event-bus.js';

const available = hasRedisServer();

function draft(topic: string, critical = false): EventDraft {
  return {
    topic,
    type: 'notification',
    payload: { title: 'x', level: 'info' },
    ts: new Date().toISOString(),
    critical,
  };
}

async function waitUntil(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
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

  async function started(url: string, overrides: Partial<RedisEventBusOptions>): Promise<RedisEventBus> {
    const bus = new RedisEventBus({
      url,
      limits: { maxEvents: 100, maxAgeMs: 3_600_000 },
      keyPrefix: 'po',
      ...overrides,
    });
    open.push(bus);
    const floor = Date.now() * 1000;
    await bus.start({ idFloor: floor, coveredFrom: floor });
    return bus;
  }

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

  it('opens its breaker, delivers locally, refuses critical events, then rejoins with an honest gap everywhere', async () => {
    const states: BreakerState[] = [];
    const gapsOnA = vi.fn();
    const gapsOnB = vi.fn();
    const a = await started(`redis://127.0.0.1:${proxy.port}`, {
      connectionName: 'bus-a',
      commandTimeoutMs: 200,
      breaker: { failureThreshold: 2, coolDownMs: 200, onStateChange: (state) => states.push(state) },
      onLiveGap: gapsOnA,
    });
    const b = await started(redis.url, { connectionName: 'bus-b', onLiveGap: gapsOnB });
    const seenByA: number[] = [];
    const seenByB: number[] = [];
    await a.subscribe('t', (event) => seenByA.push(event.id));
    await b.subscribe('t', (event) => seenByB.push(event.id));
    const first = await b.publish(draft('t'));
    await waitUntil(() => seenByA.length === 1 && seenByB.length === 1);

    proxy.freeze('bus-a:');
    // Outcome unknown (sent, no answer): refused rather than delivered twice.
    await expect(a.publish(draft('t'))).rejects.toThrow(/no answer from Redis/);
    await expect(a.publish(draft('t'))).rejects.toThrow(/no answer from Redis/);
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
    // B, on the other side, goes on; A does not see it.
    const onB = await b.publish(draft('t'));
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
});
