import { afterEach, describe, expect, it, vi } from 'vitest';
import { RedisIdSlot } from './redis-id-slot.js';

describe('RedisIdSlot', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('says since when it holds its slot: kept across renewals of the same slot, moved with the slot', async () => {
    vi.useFakeTimers({ now: 1_000_000, toFake: ['Date'] });
    const answers = [7, 7, 9];
    const slot = new RedisIdSlot({ lease: () => Promise.resolve(answers.shift() ?? 0), now: () => Date.now() });
    await slot.renew();
    expect(slot.current()).toEqual({ slot: 7, heldSinceMs: 1_000_000 });
    vi.setSystemTime(1_060_000);
    await slot.renew();
    // Renewed: the earlier ids of this slot are this instance's own, below what it knows.
    expect(slot.current()).toEqual({ slot: 7, heldSinceMs: 1_000_000 });
    vi.setSystemTime(1_120_000);
    await slot.renew();
    // Moved (Redis forgot the lease and another instance took 7): 9's earlier holder stopped before now.
    expect(slot.current()).toEqual({ slot: 9, heldSinceMs: 1_120_000 });
  });

  it('gives no slot once its lease may have run out', async () => {
    let now = 0;
    const slot = new RedisIdSlot({ lease: () => Promise.resolve(3), ttlMs: 1_000, now: () => now });
    await slot.renew();
    expect(slot.current()?.slot).toBe(3);
    now = 900; // TTL less its margin (a tenth)
    expect(slot.current()).toBeUndefined();
  });
});
