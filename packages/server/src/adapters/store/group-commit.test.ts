import { describe, expect, it } from 'vitest';
import { GroupCommit } from './group-commit.js';

/** A writer whose batches the test completes or fails by hand. */
function manualWriter() {
  const batches: { items: number[]; settle: (error?: Error) => void }[] = [];
  const write = (items: number[]) =>
    new Promise<void>((resolve, reject) => {
      batches.push({ items, settle: (error) => (error ? reject(error) : resolve()) });
    });
  return { batches, write };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('GroupCommit', () => {
  it('writes at once when idle, then batches what arrives meanwhile, in order', async () => {
    const { batches, write } = manualWriter();
    const commit = new GroupCommit({ write, maxInFlight: 1, maxBatch: 100 });
    const first = commit.add(1);
    expect(batches.map((batch) => batch.items)).toEqual([[1]]);
    const rest = [2, 3, 4].map((item) => commit.add(item));
    expect(batches).toHaveLength(1);
    batches[0]?.settle();
    await first;
    await tick();
    expect(batches.map((batch) => batch.items)).toEqual([[1], [2, 3, 4]]);
    batches[1]?.settle();
    await Promise.all(rest);
  });

  it('fails every item of a failed batch, and only those', async () => {
    const { batches, write } = manualWriter();
    const commit = new GroupCommit({ write, maxInFlight: 1, maxBatch: 100 });
    const first = commit.add(1);
    const second = [commit.add(2), commit.add(3)];
    batches[0]?.settle();
    await first;
    await tick();
    batches[1]?.settle(new Error('disk full'));
    const outcomes = await Promise.allSettled(second);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected']);
    const later = commit.add(4);
    await tick();
    batches[2]?.settle();
    await expect(later).resolves.toBeUndefined();
  });

  it('keeps batches within maxBatch and at most maxInFlight writing', async () => {
    const { batches, write } = manualWriter();
    const commit = new GroupCommit({ write, maxInFlight: 2, maxBatch: 3 });
    const all = Array.from({ length: 10 }, (_, index) => commit.add(index));
    expect(batches.map((batch) => batch.items)).toEqual([[0], [1]]);
    batches[0]?.settle();
    batches[1]?.settle();
    await tick();
    expect(batches.map((batch) => batch.items)).toEqual([[0], [1], [2, 3, 4], [5, 6, 7]]);
    batches[2]?.settle();
    batches[3]?.settle();
    await tick();
    expect(batches.at(-1)?.items).toEqual([8, 9]);
    batches[4]?.settle();
    await Promise.all(all);
  });
});
