import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { storedEvent } from '../../adapters/store/event-store.contract.js';
import { PgliteEventStore } from '../../adapters/store/pglite-event-store.js';
import { startRetentionJob, type RetentionJob } from './retention-job.js';

const NOW = Date.parse('2025-06-01T12:00:00.000Z');
const HOUR = 3_600_000;
const at = (offsetMs: number): string => new Date(NOW + offsetMs).toISOString();

describe('startRetentionJob', () => {
  let job: RetentionJob | undefined;
  /** For the tests about scheduling, where no database is needed. */
  const stubStore = { deleteOlderThan: async (_cutoff: Date) => 0 };

  afterEach(() => {
    job?.stop();
    job = undefined;
    vi.useRealTimers();
  });

  it('runOnce deletes exactly the events older than now - retentionMs', async () => {
    const store = new PgliteEventStore();
    await store.init();
    onTestFinished(() => store.close());
    await store.append(storedEvent(1, { ts: at(-3 * HOUR) }));
    await store.append(storedEvent(2, { ts: at(-2 * HOUR - 1), topic: 'other' }));
    await store.append(storedEvent(3, { ts: at(-2 * HOUR) })); // exactly at the cutoff: kept
    await store.append(storedEvent(4, { ts: at(-HOUR) }));
    await store.append(storedEvent(5, { ts: at(0) }));

    job = startRetentionJob({ store, retentionMs: 2 * HOUR, intervalMs: HOUR, now: () => NOW });
    expect(await job.runOnce()).toBe(2);
    const left = await store.readAfter({ topics: ['task:1', 'other'], after: 0, limit: 10 });
    expect(left.map((e) => e.id)).toEqual([3, 4, 5]);
    expect(await job.runOnce()).toBe(0);
  });

  it('runs every interval with an unref-ed timer', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const deleteOlderThan = vi.fn(async (_cutoff: Date) => 0);
    job = startRetentionJob({ store: { deleteOlderThan }, retentionMs: 1_000, intervalMs: 100, now: () => NOW });
    expect(deleteOlderThan).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(350);
    expect(deleteOlderThan).toHaveBeenCalledTimes(3);
    expect(deleteOlderThan).toHaveBeenLastCalledWith(new Date(NOW - 1_000));
    job.stop();
    await vi.advanceTimersByTimeAsync(500);
    expect(deleteOlderThan).toHaveBeenCalledTimes(3);
  });

  it('does not keep the process alive', () => {
    const setIntervalSpy = vi.spyOn(globalThis, 'setInterval');
    job = startRetentionJob({ store: stubStore, retentionMs: 1_000, intervalMs: 60_000 });
    const timer = setIntervalSpy.mock.results[0]?.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    setIntervalSpy.mockRestore();
  });

  it('logs a failed run instead of throwing, and keeps running', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const failure = new Error('database down');
    const deleteOlderThan = vi
      .fn<(cutoff: Date) => Promise<number>>()
      .mockRejectedValueOnce(failure)
      .mockResolvedValue(1);
    const warn = vi.fn();
    job = startRetentionJob({ store: { deleteOlderThan }, retentionMs: 1_000, intervalMs: 100, logger: { warn } });
    await vi.advanceTimersByTimeAsync(100);
    expect(warn).toHaveBeenCalledWith({ err: failure }, expect.stringMatching(/retention/));
    await vi.advanceTimersByTimeAsync(100);
    expect(deleteOlderThan).toHaveBeenCalledTimes(2);
    expect(warn).toHaveBeenCalledTimes(1);
    await expect(job.runOnce()).resolves.toBe(1);
  });

  it('skips a tick while the previous run is still in flight', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    let finish: (count: number) => void = () => undefined;
    const deleteOlderThan = vi.fn(() => new Promise<number>((resolve) => (finish = resolve)));
    job = startRetentionJob({ store: { deleteOlderThan }, retentionMs: 1_000, intervalMs: 100 });
    await vi.advanceTimersByTimeAsync(350);
    expect(deleteOlderThan).toHaveBeenCalledTimes(1);
    finish(0);
    await vi.advanceTimersByTimeAsync(100);
    expect(deleteOlderThan).toHaveBeenCalledTimes(2);
  });

  it('rejects non-positive durations', () => {
    expect(() => startRetentionJob({ store: stubStore, retentionMs: 0, intervalMs: 1 })).toThrow(RangeError);
    expect(() => startRetentionJob({ store: stubStore, retentionMs: 1, intervalMs: Number.NaN })).toThrow(RangeError);
  });
});
