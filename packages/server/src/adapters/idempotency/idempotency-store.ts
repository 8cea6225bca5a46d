/**
 * @module The port behind `Idempotency-Key`: which request holds a key, and what the first one
 * answered. In-process when embedded, Redis in a cluster (so a retry that lands on another
 * instance gets the same answer).
 */

/** What a finished request answered; its duplicates get exactly this again. */
export interface StoredAnswer {
  status: number;
  /** The serialized body, sent again byte for byte. */
  body: string;
}

/** A key held by one running request; only its holder may complete or release it. */
export interface IdempotencyClaim {
  key: string;
  /** What the store recorded for this claim (unique per claim), compared on complete/release. */
  value: string;
}

/** What {@link IdempotencyStore.begin} found. */
export type BeginOutcome =
  /** The key was free (or its claim had lapsed): the caller runs the request, then completes or releases. */
  | { kind: 'claimed'; claim: IdempotencyClaim }
  /** A request with the same body finished: answer this. */
  | { kind: 'answered'; answer: StoredAnswer }
  /** A request with the same body is still running. */
  | { kind: 'in_flight' }
  /** The key was used with another body (running or finished). */
  | { kind: 'reused' };

/** How long keys are kept. */
export interface IdempotencyRetention {
  /** How long a finished request's answer is replayed. Default 24 h (API contract). */
  answerTtlMs?: number;
  /**
   * How long a claim holds without an answer: past it, the holder is presumed dead (an instance
   * killed mid-request) and a retry runs again. Default 60 s, far above any publish.
   */
  claimTtlMs?: number;
}

export const DEFAULT_ANSWER_TTL_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_CLAIM_TTL_MS = 60_000;

/**
 * Keys are opaque to the store (the caller scopes and hashes them); `fingerprint` identifies the
 * request body. Every operation is atomic across all the instances that share the store.
 */
export interface IdempotencyStore {
  /** Claims `key` for a request whose body has `fingerprint`, unless a request already holds it. */
  begin(key: string, fingerprint: string): Promise<BeginOutcome>;
  /** Records the claimed request's answer for the answer TTL. A lapsed claim (another holds the key now) is left alone. */
  complete(claim: IdempotencyClaim, answer: StoredAnswer): Promise<void>;
  /** Forgets a claim whose request did not succeed, so that a retry runs it again. */
  release(claim: IdempotencyClaim): Promise<void>;
  close(): Promise<void>;
}

/** What one key holds, as both adapters record it. */
export type KeyEntry = { fingerprint: string; claim: string } | { fingerprint: string; status: number; body: string };

/** The outcome of `begin` for a key that is already held by `entry`. */
export function outcomeOf(entry: KeyEntry, fingerprint: string): BeginOutcome {
  if (entry.fingerprint !== fingerprint) return { kind: 'reused' };
  if ('claim' in entry) return { kind: 'in_flight' };
  return { kind: 'answered', answer: { status: entry.status, body: entry.body } };
}
