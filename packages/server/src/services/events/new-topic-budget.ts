import { FixedWindowLimit, type LimitDecision } from '../../core/fixed-window-limit.js';

/** Options of {@link NewTopicBudget}. */
export interface NewTopicBudgetOptions {
  /** New topics one publisher may open per window. */
  max: number;
  windowMs: number;
  /** A topic published to within this long is not new (its hot log still holds it): HOT_LOG_MAX_AGE_MS. */
  rememberMs: number;
  /** Most topics remembered as recently published; the least recently published are forgotten first. */
  maxRemembered?: number;
  now?: () => number;
}

const DEFAULT_MAX_REMEMBERED = 100_000;

/**
 * Bounds how many topics a publisher can bring into existence: every new topic costs the hot log
 * (and Redis) a log of its own, so one token publishing to fresh topic names could grow them
 * without end. A topic counts as new when nobody published to it on this instance within
 * `rememberMs`; publishing again to topics that exist costs nothing, so a service notifying the
 * same users over and over is never held back. Per instance, like the publish rate.
 */
export class NewTopicBudget {
  /** Topic → last publish time, least recent first (a Map keeps insertion order). */
  private readonly recent = new Map<string, number>();
  private readonly opened: FixedWindowLimit;
  private readonly now: () => number;

  constructor(private readonly options: NewTopicBudgetOptions) {
    this.now = options.now ?? Date.now;
    this.opened = new FixedWindowLimit({ max: options.max, windowMs: options.windowMs, now: this.now });
  }

  /** Whether `publisherId` may publish to `topic` now; a yes is recorded. */
  admit(publisherId: string, topic: string): LimitDecision {
    const now = this.now();
    this.forgetOld(now);
    if (!this.recent.has(topic)) {
      const decision = this.opened.take(publisherId);
      if (!decision.ok) return decision;
    }
    this.remember(topic, now);
    return { ok: true };
  }

  private remember(topic: string, now: number): void {
    this.recent.delete(topic);
    this.recent.set(topic, now);
    if (this.recent.size > (this.options.maxRemembered ?? DEFAULT_MAX_REMEMBERED)) {
      const oldest = this.recent.keys().next();
      if (!oldest.done) this.recent.delete(oldest.value);
    }
  }

  private forgetOld(now: number): void {
    for (const [topic, at] of this.recent) {
      if (now - at < this.options.rememberMs) break;
      this.recent.delete(topic);
    }
  }
}
