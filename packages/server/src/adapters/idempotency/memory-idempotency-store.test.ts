import { describe, expect, it } from 'vitest';
import { describeIdempotencyStoreContract } from './idempotency-store.contract.js';
import { MemoryIdempotencyStore } from './memory-idempotency-store.js';

describeIdempotencyStoreContract('memory', {
  create: async (retention) => new MemoryIdempotencyStore(retention),
  sharedAcrossStores: false,
});

describe('MemoryIdempotencyStore', () => {
  it('keeps at most maxKeys, forgetting the oldest first', async () => {
    const store = new MemoryIdempotencyStore({ maxKeys: 2 });
    for (const key of ['a', 'b', 'c']) {
      const outcome = await store.begin(key, 'f');
      if (outcome.kind !== 'claimed') throw new Error(outcome.kind);
      await store.complete(outcome.claim, { status: 202, body: key });
    }
    expect((await store.begin('a', 'f')).kind).toBe('claimed');
    expect(await store.begin('c', 'f')).toEqual({ kind: 'answered', answer: { status: 202, body: 'c' } });
    await store.close();
  });
});
