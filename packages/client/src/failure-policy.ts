/**
 * @module What a failed attempt leads to: stop for good, retry at once with a fresh token, or back
 * off. One pure function, so the whole policy reads (and is tested) as a table.
 */
import type { ConnectionReasons } from './connection-state.js';
import type { SSEClientError } from './errors.js';

/** The decision after a failed attempt. */
export type FailureDecision =
  | { action: 'stop'; reason: ConnectionReasons['closed'] }
  | { action: 'refresh-token' }
  | { action: 'backoff'; reason: ConnectionReasons['reconnecting']; floorMs?: number | undefined };

/** What the policy needs besides the error. */
export interface FailureContext {
  /** `Retry-After` of the answer, in ms. */
  retryAfterMs?: number | undefined;
  /** Whether this failure streak already retried a 401 with a forced token. */
  hasRetriedUnauthorized: boolean;
}

/**
 * - 401: the app's cached token may be stale, so one retry with `forceRefresh`; a second 401 stops
 *   (never continue anonymously, never hammer the server with a refused token).
 * - 403 and other 4xx: retrying cannot help; stop.
 * - 429, 408 and 5xx: back off, at least `Retry-After`.
 * - everything else (network, timeouts, bad answers, no token): back off.
 */
export function decideOnFailure(error: SSEClientError, context: FailureContext): FailureDecision {
  switch (error.code) {
    case 'unauthorized':
      return context.hasRetriedUnauthorized ? { action: 'stop', reason: 'unauthorized' } : { action: 'refresh-token' };
    case 'forbidden':
      return { action: 'stop', reason: 'forbidden' };
    case 'http_error': {
      const status = error.status ?? 0;
      if (status === 429) return { action: 'backoff', reason: 'too_many_connections', floorMs: context.retryAfterMs };
      if (status === 408 || status >= 500) {
        return { action: 'backoff', reason: 'server_error', floorMs: context.retryAfterMs };
      }
      return { action: 'stop', reason: 'rejected' };
    }
    case 'token_error':
      return { action: 'backoff', reason: 'token_error' };
    case 'heartbeat_timeout':
      return { action: 'backoff', reason: 'heartbeat_timeout' };
    case 'first_byte_timeout':
      return { action: 'backoff', reason: 'first_byte_timeout' };
    default:
      return { action: 'backoff', reason: 'network_error' };
  }
}
