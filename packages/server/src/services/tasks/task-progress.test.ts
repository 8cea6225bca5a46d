import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TaskProgress, type ProgressUpdate } from './task-progress.js';

describe('TaskProgress', () => {
  let now: number;
  let sent: { update: ProgressUpdate; boundary: boolean }[];
  let errors: unknown[];
  const make = (
    stages = ['A', 'B', 'C'],
    publish?: (update: ProgressUpdate) => Promise<void>,
    resumeFrom?: ProgressUpdate,
  ) =>
    new TaskProgress({
      stages,
      intervalMs: 100,
      now: () => now,
      publish: async (update, boundary) => {
        await publish?.(update);
        sent.push({ update, boundary });
      },
      onError: (error) => errors.push(error),
      ...(resumeFrom ? { resumeFrom } : {}),
    });

  beforeEach(() => {
    vi.useFakeTimers();
    now = 1_000;
    sent = [];
    errors = [];
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('resumed after a restart, goes on from where it stood: never lower, and no second start of that stage', async () => {
    const progress = make(undefined, undefined, {
      stage: 'B',
      stageIndex: 1,
      stageCount: 3,
      percent: 50,
      message: 'drafting',
    });
    expect(progress.current).toMatchObject({ stageIndex: 1, percent: 50 });
    // The cut stage runs again from its start: held at 50 % until it passes it.
    progress.report(0, 1);
    progress.report(1, 0);
    progress.report(1, 0.25);
    await progress.flush();
    expect(sent).toEqual([]);
    progress.report(1, 0.75);
    progress.report(2, 0);
    await progress.flush();
    expect(sent).toEqual([
      { update: { stage: 'B', stageIndex: 1, stageCount: 3, percent: 58.3, message: 'drafting' }, boundary: false },
      { update: { stage: 'C', stageIndex: 2, stageCount: 3, percent: 66.6 }, boundary: true },
    ]);
  });

  it('computes the overall percent from stage and fraction, and sends stage starts at once', async () => {
    const progress = make();
    progress.report(0, 0, 'starting');
    progress.report(1, 0);
    progress.report(2, 0.5);
    await progress.flush();
    expect(sent).toEqual([
      { update: { stage: 'A', stageIndex: 0, stageCount: 3, percent: 0, message: 'starting' }, boundary: true },
      { update: { stage: 'B', stageIndex: 1, stageCount: 3, percent: 33.3 }, boundary: true },
      { update: { stage: 'C', stageIndex: 2, stageCount: 3, percent: 83.3 }, boundary: true },
    ]);
    expect(progress.current.percent).toBe(83.3);
  });

  it('throttles within a stage to one update per interval, the latest winning, with a trailing update', async () => {
    const progress = make();
    progress.report(0, 0);
    for (const fraction of [0.1, 0.2, 0.3]) {
      now += 10;
      progress.report(0, fraction);
    }
    await vi.advanceTimersByTimeAsync(0);
    expect(sent.map((entry) => entry.update.percent)).toEqual([0]);
    now += 100;
    await vi.advanceTimersByTimeAsync(100);
    expect(sent.map((entry) => entry.update.percent)).toEqual([0, 10]);
    expect(sent[1]?.boundary).toBe(false);
    // After a quiet interval a report goes at once.
    now += 500;
    progress.report(0, 0.6);
    await vi.advanceTimersByTimeAsync(0);
    expect(sent.map((entry) => entry.update.percent)).toEqual([0, 10, 20]);
  });

  it('never goes back: lower fractions keep the percent, earlier stages are ignored, indexes are clamped', async () => {
    const progress = make(['A', 'B']);
    progress.report(1, 0.5);
    progress.report(1, 0.2, 'slower');
    progress.report(0, 1);
    progress.report(7, Number.NaN);
    progress.report(Number.NaN, 1);
    await progress.flush();
    const updates = sent.map((entry) => entry.update);
    expect(updates[0]).toEqual({ stage: 'B', stageIndex: 1, stageCount: 2, percent: 75 });
    expect(updates.at(-1)).toEqual({ stage: 'B', stageIndex: 1, stageCount: 2, percent: 75, message: 'slower' });
    for (const update of updates) expect(update.stageIndex).toBeLessThan(update.stageCount);
    progress.report(1, 1);
    await progress.flush();
    expect(sent.at(-1)?.update.percent).toBe(100);
  });

  it('sends 100 % at once and skips reports that change nothing', async () => {
    const progress = make(['Only']);
    progress.report(0, 0);
    now += 1;
    progress.report(0, 0);
    progress.report(0, 1);
    await vi.advanceTimersByTimeAsync(0);
    expect(sent.map((entry) => entry.update.percent)).toEqual([0, 100]);
  });

  it('stop drops what is pending, waits for the update in flight, and ignores later reports', async () => {
    let release: () => void = () => undefined;
    const progress = make(['A'], (update) =>
      update.percent === 0 ? new Promise((resolve) => (release = () => resolve())) : Promise.resolve(),
    );
    progress.report(0, 0);
    now += 10;
    progress.report(0, 0.5);
    let stopped = false;
    const stopping = progress.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(200);
    expect(stopped).toBe(false);
    release();
    await stopping;
    progress.report(0, 1);
    await progress.flush();
    expect(sent.map((entry) => entry.update.percent)).toEqual([0]);
    expect(progress.isStopped).toBe(true);
  });

  it('reports publish failures and goes on', async () => {
    let fail = true;
    const progress = make(['A', 'B'], async () => {
      if (fail) {
        fail = false;
        throw new Error('bus down');
      }
    });
    progress.report(0, 0);
    progress.report(1, 0);
    await progress.flush();
    expect(errors).toHaveLength(1);
    expect(sent.map((entry) => entry.update.stage)).toEqual(['B']);
  });
});
