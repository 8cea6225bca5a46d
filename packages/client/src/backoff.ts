/**
 * @module Reconnect delays: exponential backoff with full jitter ("Exponential Backoff And Jitter",
 * AWS Architecture Blog, 2015; centrifuge-js `utils.ts` `backoff`). Full jitter is what stops a
 * retry storm: when a server restart drops every client at once, each one draws its own delay
 * uniformly over the window, so reconnections arrive spread out instead of in one spike.
 */

/**
 * Backoff bounds.
 * @example createSSEClient({ url, getToken, backoff: { baseMs: 1000, maxMs: 60_000 } })
 */
export interface BackoffOptions {
  /** Window of the first retry; doubles per failed attempt. Default `500`. */
  baseMs: number;
  /** No delay exceeds this. Default `30_000`. */
  maxMs: number;
}

/**
 * The defaults of {@link BackoffOptions}: `{ baseMs: 500, maxMs: 30_000 }`.
 * @example backoffDelay({ ...DEFAULT_BACKOFF, attempt: 3, random: Math.random }) // 0…4000
 */
export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = { baseMs: 500, maxMs: 30_000 };

/**
 * Input of {@link backoffDelay}.
 * @example backoffDelay({ baseMs: 500, maxMs: 30_000, attempt: 0, random, serverRetryMs: 2000 }) // 2000…4000
 */
export interface BackoffInput extends BackoffOptions {
  /** Failed attempts before this one: 0 for the first retry. */
  attempt: number;
  /** `[0, 1)`, like `Math.random`; inject a seeded one in tests. */
  random: () => number;
  /**
   * The server's `retry:` (ms), if it sent one. It is honoured as the minimum delay and as the
   * base of the window: the server asked us to wait at least this long.
   */
  serverRetryMs?: number | undefined;
  /** A minimum for this one delay, e.g. from a `Retry-After` header. */
  floorMs?: number | undefined;
}

/**
 * Full-jitter delay: `floor + random() * min(maxMs - floor, base * 2^attempt)`, where
 * `floor = max(serverRetryMs, floorMs)` and `base = max(baseMs, serverRetryMs)`. The result never
 * exceeds `maxMs` (unless a `Retry-After` floor asks for more) and never undercuts the floor.
 * @example backoffDelay({ attempt: 0, baseMs: 500, maxMs: 30_000, random: Math.random }) // 0…500
 */
export function backoffDelay(input: BackoffInput): number {
  const serverRetryMs = Math.max(0, input.serverRetryMs ?? 0);
  const floor = Math.max(Math.min(serverRetryMs, input.maxMs), input.floorMs ?? 0);
  const base = Math.max(input.baseMs, serverRetryMs);
  // 2 ** 31 stays finite and is far past any cap; larger exponents would only overflow.
  const exponential = base * 2 ** Math.min(Math.max(0, input.attempt), 31);
  const window = Math.max(0, Math.min(input.maxMs - floor, exponential));
  return Math.round(floor + input.random() * window);
}
