import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventRecord } from '../../core/event-record.js';
import type { EventBus } from './event-bus.js';
import { notificationDraft as draft, waitUntil } from '../../../test/helpers/bus-events.js';

/** How a contract run gets a fresh, unstarted bus with the given hot-log limits. */
export interface EventBusFactory {
  create(limits: { maxEvents: number; maxAgeMs: number }): Promise<EventBus>;
}

/**
 * The behaviour every EventBus adapter must show (memory, Redis): id order, atomic fan-out,
 * hot-log reads with honest gap reporting.
 */
export function describeEventBusContract(name: string, factory: EventBusFactory): void {
  describe(`EventBus contract: ${name}`, () => {
    let bus: EventBus;
    const floor = Date.now() * 1000;
    const open: EventBus[] = [];

    async function started(limits = { maxEvents: 100, maxAgeMs: 3_600_000 }, coveredFrom = floor): Promise<EventBus> {
      const created = await factory.create(limits);
      open.push(created);
      await created.start({ idFloor: floor, coveredFrom });
      return created;
    }

    beforeEach(async () => {
      bus = await started();
    });
    afterEach(async () => {
      await Promise.all(open.splice(0).map((created) => created.close()));
    });

    it('issues strictly increasing ids above the floor', async () => {
      const ids: number[] = [];
      for (let index = 0; index < 50; index++) ids.push((await bus.publish(draft(`t${index % 3}`))).id);
      expect(ids[0]).toBeGreaterThan(floor);
      for (let index = 1; index < ids.length; index++) expect(ids[index]).toBeGreaterThan(ids[index - 1] ?? Infinity);
      expect(await bus.headId()).toBe(ids.at(-1));
    });

    it('offers headNow only where it is exact: the head, and a subscription made right after it misses nothing above it', async () => {
      // Redis answers the head over the network, where events may be on their way: no headNow.
      expect(bus.headNow === undefined).toBe(bus.kind === 'redis');
      if (bus.headNow === undefined) return;
      const before = await bus.publish(draft('doc:now'));
      expect(bus.headNow()).toBe(before.id);
      expect(await bus.headId()).toBe(before.id);
      const got: number[] = [];
      const subscribed = bus.subscribe('doc:now', (event) => got.push(event.id));
      // Not awaited: in effect as soon as subscribe returns.
      const after = await bus.publish(draft('doc:now'));
      await subscribed;
      expect(got).toEqual([after.id]);
    });

    it('never issues an id at or below a floor far in the future', async () => {
      const future = await factory.create({ maxEvents: 10, maxAgeMs: 60_000 });
      open.push(future);
      const farFloor = (Date.now() + 86_400_000) * 1000;
      await future.start({ idFloor: farFloor, coveredFrom: farFloor });
      expect((await future.publish(draft('t'))).id).toBeGreaterThan(farFloor);
    });

    it('fans out to every subscriber of the topic, in id order, and only of that topic', async () => {
      const a: EventRecord[] = [];
      const b: EventRecord[] = [];
      const other: EventRecord[] = [];
      await bus.subscribe('doc:1', (event) => a.push(event));
      await bus.subscribe('doc:1', (event) => b.push(event));
      await bus.subscribe('doc:2', (event) => other.push(event));
      const published = [];
      for (let index = 0; index < 20; index++) published.push(await bus.publish(draft('doc:1', `e${index}`)));
      await waitUntil(() => a.length === 20 && b.length === 20);
      expect(a.map((event) => event.id)).toEqual(published.map((event) => event.id));
      expect(b.map((event) => event.payload)).toEqual(published.map((event) => event.payload));
      expect(other).toEqual([]);
    });

    it('stops delivering after unsubscribe, leaving other subscriptions intact', async () => {
      const kept: EventRecord[] = [];
      const dropped: EventRecord[] = [];
      const listener = (event: EventRecord) => dropped.push(event);
      await bus.subscribe('doc:1', (event) => kept.push(event));
      const unsubscribe = await bus.subscribe('doc:1', listener);
      await bus.publish(draft('doc:1'));
      await waitUntil(() => dropped.length === 1 && kept.length === 1);
      await unsubscribe();
      await bus.publish(draft('doc:1'));
      await waitUntil(() => kept.length === 2);
      expect(dropped).toHaveLength(1);
    });

    it('reads the hot log after an id across topics, ascending, with records intact', async () => {
      const first = await bus.publish(draft('a', 'one'));
      const second = await bus.publish(draft('b', 'two', true));
      await bus.publish(draft('c', 'elsewhere'));
      const third = await bus.publish(draft('a', 'three'));
      const read = await bus.read(['a', 'b'], first.id, 100);
      expect(read.events).toEqual([second, third]);
      expect(read.gapTopics).toEqual([]);
      expect(read.truncated).toBe(false);
      expect((await bus.read(['a', 'b'], third.id, 100)).events).toEqual([]);
    });

    it('says from which id on everything goes out after a read: the highest id issued at the read, on any topic', async () => {
      await bus.publish(draft('a'));
      const last = await bus.publish(draft('elsewhere'));
      expect((await bus.read(['a'], floor, 100)).liveAbove).toBe(last.id);
    });

    it('tells the head with a read, as headId does (a resume needs no second round trip for it)', async () => {
      await bus.publish(draft('a'));
      const last = await bus.publish(draft('elsewhere'));
      const read = await bus.read(['a', 'quiet'], floor, 100);
      expect(read.head).toBe(last.id);
      expect(read.head).toBe(await bus.headId());
    });

    it('reports a gap for a topic trimmed past the reader, and none for one still covered', async () => {
      const small = await started({ maxEvents: 3, maxAgeMs: 3_600_000 });
      const ids: number[] = [];
      for (let index = 0; index < 6; index++) ids.push((await small.publish(draft('busy'))).id);
      const quiet = await small.publish(draft('quiet'));
      const read = await small.read(['busy', 'quiet'], ids[1] ?? 0, 100);
      expect(read.gapTopics).toEqual(['busy']);
      expect(read.events.map((event) => event.id)).toEqual([...ids.slice(3), quiet.id]);
      expect(read.oldestId).toBe(ids[3]);
      // The last trimmed event is exactly where this reader stands: nothing is missing.
      expect((await small.read(['busy'], ids[2] ?? 0, 100)).gapTopics).toEqual([]);
    });

    it('reports a gap for readers from before the covered range (restart that lost the log)', async () => {
      const restarted = await started(undefined, floor + 1_000_000);
      const read = await restarted.read(['x'], floor + 5, 100);
      expect(read.gapTopics).toEqual(['x']);
      expect((await restarted.read(['x'], floor + 1_000_000, 100)).gapTopics).toEqual([]);
    });

    it('keeps the newest events and flags truncation past the read limit', async () => {
      const ids: number[] = [];
      for (let index = 0; index < 10; index++) ids.push((await bus.publish(draft('t'))).id);
      const read = await bus.read(['t'], floor, 4);
      expect(read.truncated).toBe(true);
      expect(read.events.map((event) => event.id)).toEqual(ids.slice(6));
    });

    it('reports itself up', async () => {
      expect((await bus.health()).status).toBe('up');
    });
  });
}
