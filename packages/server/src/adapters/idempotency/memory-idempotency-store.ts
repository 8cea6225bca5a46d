import { randomBytes } from 'node:crypto';
import {
  DEFAULT_ANSWER_TTL_MS,
  DEFAULT_CLAIM_TTL_MS,
  outcomeOf,
  type BeginOutcome,
  type IdempotencyClaim,
  type IdempotencyRetention,
  type IdempotencyStore,
  type KeyEntry,
  type StoredAnswer,
} from './idempotency-store.js';

/** Options of {@link MemoryIdempotencyStore}. */
export interface MemoryIdempotencyStoreOptions extends IdempotencyRetention {
  /** Most keys kept; past it the oldest are forgotten first (bounded memory). Default 100,000. */
  maxKeys?: number;
  now?: () => number;
}

/** Keys of one process: the embedded default (one instance answers every retry). */
export class MemoryIdempotencyStore implements IdempotencyStore {
  /** In insertion order, which is (nearly) expiry order: eviction takes the oldest. */
  private readonly entries = new Map<string, { entry: KeyEntry; expiresAt: number }>();
  private readonly answerTtlMs: number;
  private readonly claimTtlMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;
  private readonly sweep: NodeJS.Timeout;

  constructor(options: MemoryIdempotencyStoreOptions = {}) {
    this.answerTtlMs = options.answerTtlMs ?? DEFAULT_ANSWER_TTL_MS;
    this.claimTtlMs = options.claimTtlMs ?? DEFAULT_CLAIM_TTL_MS;
    this.maxKeys = options.maxKeys ?? 100_000;
    this.now = options.now ?? Date.now;
    this.sweep = setInterval(() => {
      const now = this.now();
      for (const [key, held] of this.entries) if (held.expiresAt <= now) this.entries.delete(key);
    }, 60_000);
    this.sweep.unref();
  }

  async begin(key: string, fingerprint: string): Promise<BeginOutcome> {
    const held = this.entries.get(key);
    if (held && held.expiresAt > this.now()) return outcomeOf(held.entry, fingerprint);
    const claim = randomBytes(12).toString('base64url');
    this.put(key, { fingerprint, claim }, this.claimTtlMs);
    return { kind: 'claimed', claim: { key, value: claim } };
  }

  async complete(claim: IdempotencyClaim, answer: StoredAnswer): Promise<void> {
    const entry = this.heldBy(claim);
    if (entry) this.put(claim.key, { fingerprint: entry.fingerprint, ...answer }, this.answerTtlMs);
  }

  async release(claim: IdempotencyClaim): Promise<void> {
    if (this.heldBy(claim)) this.entries.delete(claim.key);
  }

  async close(): Promise<void> {
    clearInterval(this.sweep);
    this.entries.clear();
  }

  /** The key's entry while `claim` still holds it. */
  private heldBy(claim: IdempotencyClaim): KeyEntry | undefined {
    const held = this.entries.get(claim.key);
    if (!held || held.expiresAt <= this.now() || !('claim' in held.entry)) return undefined;
    return held.entry.claim === claim.value ? held.entry : undefined;
  }

  private put(key: string, entry: KeyEntry, ttlMs: number): void {
    // Deleted first so the key moves to the end of the insertion order.
    this.entries.delete(key);
    this.entries.set(key, { entry, expiresAt: this.now() + ttlMs });
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.maxKeys) break;
      this.entries.delete(oldest);
    }
  }
}
