/** Options of {@link FixedWindowLimit}. */
export interface FixedWindowLimitOptions {
  /** Takes allowed per key per window. */
  max: number;
  windowMs: number;
  now?: () => number;
}

/** What {@link FixedWindowLimit.take} decides; `retryAfterMs` is when the key's window ends. */
export type LimitDecision = { ok: true } | { ok: false; retryAfterMs: number };

/**
 * At most `max` takes per key per fixed window, in this process (creations of generations and
 * tasks per user, tickets per user, new topics per publisher). Quiet keys are forgotten once a
 * window, so memory follows the keys active in the last window only.
 */
export class FixedWindowLimit {
  private readonly windows = new Map<string, { startedAt: number; taken: number }>();
  private nextSweepAt = Number.NEGATIVE_INFINITY;
  private readonly now: () => number;

  constructor(private readonly options: FixedWindowLimitOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Takes one for `key`, unless its window is used up. */
  take(key: string): LimitDecision {
    const now = this.now();
    const { max, windowMs } = this.options;
    if (now >= this.nextSweepAt) {
      this.nextSweepAt = now + windowMs;
      for (const [quiet, window] of this.windows) if (now - window.startedAt >= windowMs) this.windows.delete(quiet);
    }
    let window = this.windows.get(key);
    if (!window || now - window.startedAt >= windowMs) {
      window = { startedAt: now, taken: 0 };
      this.windows.set(key, window);
    }
    if (window.taken >= max) return { ok: false, retryAfterMs: window.startedAt + windowMs - now };
    window.taken++;
    return { ok: true };
  }

  /** `Retry-After` (whole seconds, at least 1) for a refused take. */
  static retryAfterHeader(decision: { retryAfterMs: number }): Record<string, string> {
    return { 'retry-after': String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))) };
  }
}
