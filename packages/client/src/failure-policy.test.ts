import { describe, expect, it } from 'vitest';
import { SSEClientError, type SSEClientErrorCode } from './errors.js';
import { decideOnFailure } from './failure-policy.js';

const failure = (code: SSEClientErrorCode, status?: number) => new SSEClientError(code, code, { status });
const fresh = { hasRetriedUnauthorized: false };

describe('decideOnFailure', () => {
  it('retries a 401 once with a fresh token, then stops', () => {
    expect(decideOnFailure(failure('unauthorized', 401), fresh)).toEqual({ action: 'refresh-token' });
    expect(decideOnFailure(failure('unauthorized', 401), { hasRetriedUnauthorized: true })).toEqual({
      action: 'stop',
      reason: 'unauthorized',
    });
  });

  it.each([
    [403, 'forbidden', { action: 'stop', reason: 'forbidden' }],
    [400, 'http_error', { action: 'stop', reason: 'rejected' }],
    [404, 'http_error', { action: 'stop', reason: 'rejected' }],
    [408, 'http_error', { action: 'backoff', reason: 'server_error', floorMs: 1000 }],
    [429, 'http_error', { action: 'backoff', reason: 'too_many_connections', floorMs: 1000 }],
    [500, 'http_error', { action: 'backoff', reason: 'server_error', floorMs: 1000 }],
    [503, 'http_error', { action: 'backoff', reason: 'server_error', floorMs: 1000 }],
  ] as const)('HTTP %i → %o', (status, code, decision) => {
    expect(decideOnFailure(failure(code, status), { ...fresh, retryAfterMs: 1000 })).toEqual(decision);
  });

  it.each([
    ['network_error', 'network_error'],
    ['bad_response', 'network_error'],
    ['token_error', 'token_error'],
    ['heartbeat_timeout', 'heartbeat_timeout'],
    ['first_byte_timeout', 'first_byte_timeout'],
  ] as const)('%s backs off as %s', (code, reason) => {
    expect(decideOnFailure(failure(code), fresh)).toEqual({ action: 'backoff', reason });
  });
});
