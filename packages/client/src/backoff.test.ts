import { describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_BACKOFF } from './backoff.js';
import { seededRandom } from './testing/fakes.js';

const lowest = () => 0;
const highest = () => 0.999_999;

describe('backoffDelay', () => {
  it('draws from [0, base × 2^attempt) with full jitter', () => {
    for (const [attempt, top] of [
      [0, 500],
      [1, 1000],
      [2, 2000],
      [5, 16_000],
    ] as const) {
      expect(backoffDelay({ ...DEFAULT_BACKOFF, attempt, random: lowest })).toBe(0);
      expect(backoffDelay({ ...DEFAULT_BACKOFF, attempt, random: highest })).toBe(top);
      expect(backoffDelay({ ...DEFAULT_BACKOFF, attempt, random: () => 0.5 })).toBe(top / 2);
    }
  });

  it('never exceeds maxMs, even for huge attempt counts', () => {
    expect(backoffDelay({ ...DEFAULT_BACKOFF, attempt: 6, random: highest })).toBe(30_000);
    expect(backoffDelay({ ...DEFAULT_BACKOFF, attempt: 10_000, random: highest })).toBe(30_000);
    expect(Number.isFinite(backoffDelay({ ...DEFAULT_BACKOFF, attempt: 1e9, random: highest }))).toBe(true);
  });

  it("honours the server's retry: as minimum and base", () => {
    const input = { ...DEFAULT_BACKOFF, serverRetryMs: 2000 };
    expect(backoffDelay({ ...input, attempt: 0, random: lowest })).toBe(2000);
    expect(backoffDelay({ ...input, attempt: 0, random: highest })).toBe(4000);
    expect(backoffDelay({ ...input, attempt: 2, random: highest })).toBe(2000 + 8000);
    expect(backoffDelay({ ...input, attempt: 10, random: highest })).toBe(30_000);
    // A retry: below baseMs raises nothing but the floor.
    expect(backoffDelay({ ...DEFAULT_BACKOFF, serverRetryMs: 100, attempt: 0, random: highest })).toBe(600);
  });

  it('keeps a Retry-After floor even past maxMs', () => {
    expect(backoffDelay({ ...DEFAULT_BACKOFF, floorMs: 7000, attempt: 0, random: lowest })).toBe(7000);
    expect(backoffDelay({ ...DEFAULT_BACKOFF, floorMs: 60_000, attempt: 3, random: highest })).toBe(60_000);
  });

  it('spreads delays evenly over the window', () => {
    const random = seededRandom(42);
    const delays = Array.from({ length: 10_000 }, () => backoffDelay({ ...DEFAULT_BACKOFF, attempt: 3, random }));
    const mean = delays.reduce((sum, delay) => sum + delay, 0) / delays.length;
    expect(mean).toBeGreaterThan(1900);
    expect(mean).toBeLessThan(2100);
    const quarters = [0, 0, 0, 0];
    for (const delay of delays) quarters[Math.min(3, Math.floor(delay / 1000))]!++;
    for (const count of quarters) expect(count / delays.length).toBeCloseTo(0.25, 1);
  });
});
