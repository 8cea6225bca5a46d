import type { FastifyBaseLogger } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryEventBus } from '../../adapters/bus/memory-event-bus.js';
import { createLogger } from '../../adapters/observability/logger.js';
import { Metrics } from '../../adapters/observability/metrics.js';
import type { EventStore } from '../../adapters/store/event-store.js';
import { PgliteEventStore } from '../../adapters/store/pglite-event-store.js';
import { idFloorAt } from '../../core/event-id.js';
import type { EventRecord } from '../../core/event-record.js';
import { EventPublisher } from './event-publisher.js';
import { MAX_PAYLOAD_DEPTH } from './payload-json.js';
import { repairPendingEvents } from './pending-event-repair.js';

const logger = createLogger({ level: 'silent' }) as FastifyBaseLogger;
const NOTE = { title: 'x', level: 'info' };

/** Nests `{ nested: … }` `levels` times around an empty object. */
function nested(levels: number): unknown {
  let value: unknown = {};
  for (let level = 1; level < levels; level++) value = { nested: value };
  return value;
}

describe('EventPublisher', () => {
  let bus: MemoryEventBus;
  let store: PgliteEventStore;
  /** While set, the store refuses writes but still answers its health probe: it just died. */
  let writesFail: boolean;
  let publisher: EventPublisher;
  let delivered: EventRecord[];

  beforeEach(async () => {
    bus = new MemoryEventBus({ maxEvents: 100, maxAgeMs: 3_600_000 }, Date.now, logger);
    await bus.start({ idFloor: idFloorAt(Date.now()), coveredFrom: 0 });
    store = new PgliteEventStore();
    await store.init();
    writesFail = false;
    const failing = new Proxy(store, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== 'function') return value;
        if (writesFail && ['append', 'insertPending', 'confirm'].includes(String(property))) {
          return async () => Promise.reject(new Error('connection terminated'));
        }
        return (value as (...args: unknown[]) => unknown).bind(target);
      },
    }) as EventStore;
    publisher = new EventPublisher({ bus, store: failing, metrics: new Metrics({ defaultMetrics: false }), logger });
    delivered = [];
    await bus.subscribe('user:u1', (event) => delivered.push(event));
  });
  afterEach(async () => {
    await bus.close();
    await store.close();
  });

  const hotLog = async () => (await bus.read(['user:u1'], 0, 100)).events;
  const stored = () => store.readAfter({ topics: ['user:u1'], after: 0, limit: 100 });

  it('never delivers a critical event it answers 503 store_unavailable, nor leaves it in the hot log', async () => {
    writesFail = true;
    await expect(
      publisher.publish({ topic: 'user:u1', type: 'notification', payload: NOTE, critical: true }),
    ).rejects.toMatchObject({ code: 'store_unavailable' });
    expect(delivered).toEqual([]);
    expect(await hotLog()).toEqual([]);
    // The publisher's retry makes the one event there is.
    writesFail = false;
    const record = await publisher.publish({ topic: 'user:u1', type: 'notification', payload: NOTE, critical: true });
    expect(delivered.map((event) => event.id)).toEqual([record.id]);
    expect((await stored()).map((event) => event.id)).toEqual([record.id]);
    expect(await store.readPending({ olderThanMs: 0, limit: 10 })).toEqual([]);
  });

  it('stores a critical event before anyone can see it', async () => {
    const pendingWhenDelivered: number[] = [];
    await bus.subscribe('user:u1', () => {
      void store.readPending({ olderThanMs: 0, limit: 10 }).then((rows) => pendingWhenDelivered.push(rows.length));
    });
    await publisher.publish({ topic: 'user:u1', type: 'notification', payload: NOTE, critical: true });
    await expect.poll(() => pendingWhenDelivered).toEqual([1]);
  });

  it('answers a critical event the store holds pending when setting its id fails, and sets it later', async () => {
    // The store dies between the pending insert and the confirmation, and comes back.
    await bus.subscribe('user:u1', () => {
      writesFail = true;
      setTimeout(() => (writesFail = false), 100);
    });
    const record = await publisher.publish({ topic: 'user:u1', type: 'notification', payload: NOTE, critical: true });
    expect(delivered.map((event) => event.id)).toEqual([record.id]);
    expect(await store.readPending({ olderThanMs: 0, limit: 10 })).toHaveLength(1);
    await expect.poll(async () => (await stored()).map((event) => event.id), { timeout: 5_000 }).toEqual([record.id]);
  });

  it('refuses payloads JSON cannot carry with invalid_event, before they get an id', async () => {
    const head = await bus.headId();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const result of [nested(20_000), nested(MAX_PAYLOAD_DEPTH), Number.NaN, Infinity, 10n ** 30n, cyclic]) {
      await expect(
        publisher.publish({
          topic: 'user:u1',
          type: 'task.completed',
          payload: { taskId: 't', result },
          critical: true,
        }),
      ).rejects.toMatchObject({ code: 'invalid_event' });
    }
    expect(await bus.headId()).toBe(head);
    expect(delivered).toEqual([]);
    expect(await store.readPending({ olderThanMs: 0, limit: 10 })).toEqual([]);
    // Just within the limit (the payload is level 1), and lone surrogates, go out unchanged.
    const payload = { taskId: 't', result: { deep: nested(MAX_PAYLOAD_DEPTH - 2), lone: '\ud800 \udfff' } };
    const record = await publisher.publish({ topic: 'user:u1', type: 'task.completed', payload, critical: true });
    expect((await stored())[0]).toMatchObject({ id: record.id, payload });
  });

  it('publishes once and to every listener when one bus listener throws', async () => {
    await bus.subscribe('user:u1', () => {
      throw new Error('a broken listener');
    });
    const after: EventRecord[] = [];
    await bus.subscribe('user:u1', (event) => after.push(event));
    const record = await publisher.publish({ topic: 'user:u1', type: 'notification', payload: NOTE });
    expect(delivered).toEqual([record]);
    expect(after).toEqual([record]);
    expect((await hotLog()).map((event) => event.id)).toEqual([record.id]);
  });
});

describe('repairPendingEvents', () => {
  let bus: MemoryEventBus;
  let store: PgliteEventStore;

  beforeEach(async () => {
    bus = new MemoryEventBus({ maxEvents: 100, maxAgeMs: 3_600_000 });
    await bus.start({ idFloor: idFloorAt(Date.now()), coveredFrom: 0 });
    store = new PgliteEventStore();
    await store.init();
  });
  afterEach(async () => {
    await bus.close();
    await store.close();
  });

  const draft = (key: string) => ({
    topic: 'user:u1',
    type: 'notification' as const,
    payload: NOTE,
    ts: new Date().toISOString(),
    critical: true,
    key,
  });

  it('confirms a pending event its publisher published but never confirmed, and drops one never published', async () => {
    // A publisher that died between publishing and confirming, and one that died before publishing.
    await store.insertPending(draft('published'));
    const record = await bus.publish(draft('published'));
    await store.insertPending(draft('never-published'));
    const options = { bus, store, hotLogMaxEvents: 100, logger };
    // Too young to be dropped: its publisher may still be at it.
    expect(await repairPendingEvents(options, 0)).toEqual({ confirmed: 1, dropped: 0 });
    expect((await store.readAfter({ topics: ['user:u1'], after: 0, limit: 10 })).map((event) => event.id)).toEqual([
      record.id,
    ]);
    expect(await repairPendingEvents({ ...options, dropAfterMs: 0 }, 0)).toEqual({ confirmed: 0, dropped: 1 });
    expect(await store.readPending({ olderThanMs: 0, limit: 10 })).toEqual([]);
  });
});
