import { describe, expect, it } from 'vitest';
import { TurnBatch, type BatchOutcome } from './turn-batch.js';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A batch that doubles numbers, fails the negative ones alone, and remembers each call's inputs. */
function doubling(options: { maxWeight?: number; failWhole?: (inputs: readonly number[]) => Error | undefined } = {}) {
  const calls: number[][] = [];
  const batch = new TurnBatch<number, number>({
    maxWeight: options.maxWeight,
    weigh: (input) => Math.max(1, Math.abs(input) - 9), // 10 weighs 1, 12 weighs 3
    retrySeparately: (error) => error instanceof Error && error.message.startsWith('separable'),
    execute: async (inputs) => {
      calls.push([...inputs]);
      const whole = options.failWhole?.(inputs);
      if (whole) throw whole;
      return inputs.map((input): BatchOutcome<number> =>
        input < 0 ? { ok: false, error: new Error(`negative ${input}`) } : { ok: true, value: input * 2 },
      );
    },
  });
  return { batch, calls };
}

describe('TurnBatch', () => {
  it('runs the inputs of one turn as one call, in order, each settling with its own outcome', async () => {
    const { batch, calls } = doubling();
    const results = await Promise.allSettled([batch.add(1), batch.add(-2), batch.add(3)]);
    expect(calls).toEqual([[1, -2, 3]]);
    expect(results[0]).toEqual({ status: 'fulfilled', value: 2 });
    expect(results[1]).toMatchObject({ status: 'rejected', reason: new Error('negative -2') });
    expect(results[2]).toEqual({ status: 'fulfilled', value: 6 });
  });

  it('gives inputs of later turns their own calls', async () => {
    const { batch, calls } = doubling();
    const first = batch.add(1);
    await nextTurn();
    const second = batch.add(2);
    const third = batch.add(3);
    await expect(Promise.all([first, second, third])).resolves.toEqual([2, 4, 6]);
    expect(calls).toEqual([[1], [2, 3]]);
  });

  it('starts a batch at once when it reaches its weight, and opens another for the next inputs', async () => {
    const { batch, calls } = doubling({ maxWeight: 3 });
    const results = await Promise.all([1, 2, 3, 12, 4, 5].map((input) => batch.add(input)));
    expect(results).toEqual([2, 4, 6, 24, 8, 10]);
    expect(calls).toEqual([[1, 2, 3], [12], [4, 5]]);
  });

  it('fails every input of a batch whose call fails, and only that batch', async () => {
    const { batch, calls } = doubling({ failWhole: (inputs) => (inputs.includes(7) ? new Error('down') : undefined) });
    const failed = Promise.allSettled([batch.add(7), batch.add(8)]);
    await nextTurn();
    const later = batch.add(9);
    expect(await failed).toMatchObject([
      { status: 'rejected', reason: new Error('down') },
      { status: 'rejected', reason: new Error('down') },
    ]);
    await expect(later).resolves.toBe(18);
    expect(calls).toEqual([[7, 8], [9]]);
  });

  it('runs a batch again input by input when its error may come from one input, so only that one fails', async () => {
    const { batch, calls } = doubling({
      failWhole: (inputs) => (inputs.includes(13) ? new Error('separable: 13 is unlucky') : undefined),
    });
    const results = await Promise.allSettled([batch.add(12), batch.add(13), batch.add(14)]);
    expect(results).toMatchObject([
      { status: 'fulfilled', value: 24 },
      { status: 'rejected', reason: new Error('separable: 13 is unlucky') },
      { status: 'fulfilled', value: 28 },
    ]);
    expect(calls).toEqual([[12, 13, 14], [12], [13], [14]]);
  });

  it('rejects an input the call gave no outcome for', async () => {
    const batch = new TurnBatch<number, number>({ execute: async () => [{ ok: true, value: 1 }] });
    const results = await Promise.allSettled([batch.add(1), batch.add(2)]);
    expect(results[0]).toEqual({ status: 'fulfilled', value: 1 });
    expect(results[1]).toMatchObject({ status: 'rejected' });
  });
});
