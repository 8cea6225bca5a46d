import { afterEach, describe, expect, it, vi } from 'vitest';
import { seededRandom } from '../../core/seeded-random.js';
import { PartitionBarrier } from './partition-barrier.js';

interface Ev {
  id: number;
}

const flushMicrotasks = () => new Promise<void>((resolve) => setImmediate(resolve));

function barrier(options: { tickTimeoutMs?: number; now?: () => number } = {}) {
  const released: number[] = [];
  const ticks: [number, number][] = [];
  const regressions: [number, number][] = [];
  const instance = new PartitionBarrier<Ev>({
    release: (event) => released.push(event.id),
    requestTick: (partition, target) => ticks.push([partition, target]),
    onRegression: (partition, event) => regressions.push([partition, event.id]),
    ...options,
  });
  return { instance, released, ticks, regressions };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('PartitionBarrier', () => {
  it('with one partition releases each event at once, asking for no tick', async () => {
    const { instance, released, ticks } = barrier();
    instance.wait(0, 0);
    for (const id of [5, 9, 30]) instance.receive(0, { id });
    await flushMicrotasks();
    expect(released).toEqual([5, 9, 30]);
    expect(ticks).toEqual([]);
    expect(instance.waiting).toBe(0);
  });

  it('holds an event until every other partition is past it, then releases all in one id order', async () => {
    const { instance, released, ticks } = barrier();
    instance.wait(0, 0);
    instance.wait(1, 0);
    instance.receive(0, { id: 700 });
    instance.receive(0, { id: 720 });
    expect(released).toEqual([]);
    await flushMicrotasks();
    // One tick for partition 1, up to the newest waiting id, so one answer releases both.
    expect(ticks).toEqual([[1, 720]]);
    // Partition 1 had issued 500 and 710 before the tick: they arrive first, in its order.
    instance.receive(1, { id: 500 });
    expect(released).toEqual([500]); // both partitions are past 500; 700 waits, partition 1 being at 500
    instance.receive(1, { id: 710 });
    expect(released).toEqual([500, 700, 710]);
    instance.advance(1, 725);
    expect(released).toEqual([500, 700, 710, 720]);
    expect(instance.waiting).toBe(0);
  });

  it('asks once per turn and per partition, however many events wait', async () => {
    const { instance, ticks } = barrier();
    instance.wait(0, 0);
    instance.wait(1, 0);
    instance.wait(2, 0);
    for (let id = 10; id < 20; id++) instance.receive(0, { id });
    await flushMicrotasks();
    expect(ticks).toEqual([
      [1, 19],
      [2, 19],
    ]);
    // Still outstanding and covering the oldest waiting id: not asked again.
    instance.receive(0, { id: 25 });
    await flushMicrotasks();
    expect(ticks).toHaveLength(2);
  });

  it('asks again for a tick not answered in time', async () => {
    vi.useFakeTimers();
    let now = 0;
    const { instance, ticks, released } = barrier({ tickTimeoutMs: 500, now: () => now });
    instance.wait(0, 0);
    instance.wait(1, 0);
    instance.receive(0, { id: 40 });
    await vi.advanceTimersByTimeAsync(0);
    expect(ticks).toEqual([[1, 40]]);
    now = 600;
    await vi.advanceTimersByTimeAsync(600);
    expect(ticks).toEqual([
      [1, 40],
      [1, 40],
    ]);
    instance.advance(1, 41);
    expect(released).toEqual([40]);
    instance.close();
  });

  it('holds events above a partition it starts waiting for, from the watermark given', async () => {
    const { instance, released, ticks } = barrier();
    instance.wait(0, 0);
    instance.receive(0, { id: 100 });
    expect(released).toEqual([100]);
    instance.wait(1, 90);
    instance.receive(0, { id: 110 });
    await flushMicrotasks();
    expect(released).toEqual([100]);
    expect(ticks).toEqual([[1, 110]]);
    instance.receive(1, { id: 105 });
    instance.advance(1, 111);
    expect(released).toEqual([100, 105, 110]);
  });

  it('keeps an event no partition issued (an island’s) in the one order without moving any watermark', async () => {
    const { instance, released } = barrier();
    instance.wait(0, 0);
    instance.wait(1, 0);
    instance.receive(0, { id: 50 });
    instance.hold({ id: 60 });
    await flushMicrotasks();
    // Handed out now, 60 would put streams past partition 1's ids below it.
    expect(released).toEqual([]);
    instance.receive(1, { id: 55 });
    expect(released).toEqual([50]);
    // Its id moved no watermark: partition 0 is still known at 50 only.
    expect(instance.partitions.get(0)).toBe(50);
    instance.advance(0, 70);
    expect(released).toEqual([50, 55]);
    instance.advance(1, 70);
    expect(released).toEqual([50, 55, 60]);
  });

  it('releases an event at or below its partition’s watermark at once and reports it', async () => {
    const { instance, released, regressions } = barrier();
    instance.wait(0, 0);
    instance.wait(1, 0);
    instance.advance(1, 50);
    instance.receive(1, { id: 40 });
    expect(released).toEqual([40]);
    expect(regressions).toEqual([[1, 40]]);
  });

  it('keeps one id order for partitions whose counters lag each other (randomised)', async () => {
    for (let seed = 1; seed <= 25; seed++) {
      const random = seededRandom(seed);
      const partitions = 2 + Math.floor(random() * 3);
      // Each partition issues ids from its own counter: time-seeded, residue = partition, with its own lag.
      const counters = Array.from({ length: partitions }, (_, p) => 1_000 + p + Math.floor(random() * 50) * 10);
      const issue = (p: number, atLeast = 0) => {
        const base = Math.max((counters[p] ?? 0) + 1, atLeast);
        counters[p] = base + ((p - (base % 10) + 10) % 10);
        return counters[p];
      };
      // What each partition issued but has not yet reached this instance, in its order: events and tick answers.
      const inFlight: { kind: 'event' | 'tick'; id: number }[][] = Array.from({ length: partitions }, () => []);
      const { instance, released, ticks, regressions } = barrier();
      for (let p = 0; p < partitions; p++) instance.wait(p, counters[p] ?? 0);
      const published: number[] = [];
      let ticksAnswered = 0;
      for (let step = 0; step < 400; step++) {
        const roll = random();
        const p = Math.floor(random() * partitions);
        if (roll < 0.45) {
          const id = issue(p);
          published.push(id);
          inFlight[p]?.push({ kind: 'event', id });
        } else if (roll < 0.9) {
          const next = inFlight[p]?.shift();
          if (next?.kind === 'event') instance.receive(p, { id: next.id });
          else if (next) instance.advance(p, next.id);
        } else {
          await flushMicrotasks();
          for (const [partition, target] of ticks.splice(0)) {
            // The tick raises the counter to the target; its answer queues behind what was issued before.
            counters[partition] = Math.max(counters[partition] ?? 0, target);
            inFlight[partition]?.push({ kind: 'tick', id: counters[partition] ?? 0 });
            ticksAnswered++;
          }
        }
      }
      // Drain: deliver everything in flight, answering ticks until nothing waits.
      for (let round = 0; round < 50 && (instance.waiting > 0 || inFlight.some((queue) => queue.length > 0)); round++) {
        for (let p = 0; p < partitions; p++) {
          for (const next of inFlight[p]?.splice(0) ?? []) {
            if (next.kind === 'event') instance.receive(p, { id: next.id });
            else instance.advance(p, next.id);
          }
        }
        await flushMicrotasks();
        for (const [partition, target] of ticks.splice(0)) {
          counters[partition] = Math.max(counters[partition] ?? 0, target);
          inFlight[partition]?.push({ kind: 'tick', id: counters[partition] ?? 0 });
          ticksAnswered++;
        }
      }
      expect(regressions).toEqual([]);
      expect(instance.waiting).toBe(0);
      // Everything published came out once, in one strictly increasing order.
      expect(released).toEqual([...published].sort((a, b) => a - b));
      expect(new Set(released).size).toBe(released.length);
      expect(ticksAnswered).toBeGreaterThan(0);
      instance.close();
    }
  });
});
