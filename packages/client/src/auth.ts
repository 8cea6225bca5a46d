/**
 * @module Tokens: asking the app for one (never connecting without it) and extending a live
 * stream with a fresh one (`auth.expiring` → `POST /api/sse/connections/:connectionId/refresh`,
 * idempotent, so safe to send again).
 */
import { SSEClientError } from './errors.js';
import { buildUrl, failureFromResponse, type FetchLike } from './transport.js';
import { refreshPath } from './wire.js';

/**
 * Supplies the access token. Must resolve to a non-empty token; `forceRefresh: true` means a
 * cached token must not be reused (after a 401, on `auth.expiring`, after `auth.expired`).
 * @example const getToken: GetToken = ({ forceRefresh }) => auth.getAccessToken({ forceRefresh });
 */
export type GetToken = (options: { forceRefresh: boolean }) => Promise<string>;

/** The token, or a `token_error` when `getToken` threw or gave nothing. */
export async function requestToken(getToken: GetToken, forceRefresh: boolean): Promise<string | SSEClientError> {
  try {
    const token = await getToken({ forceRefresh });
    if (typeof token === 'string' && token !== '') return token;
    return new SSEClientError('token_error', 'getToken() resolved without a token; not connecting anonymously');
  } catch (cause) {
    return new SSEClientError('token_error', 'getToken() failed; not connecting anonymously', { cause });
  }
}

/** Input of {@link refreshStreamToken}. */
export interface RefreshInput {
  baseUrl: string;
  connectionId: string;
  token: string;
  fetch: FetchLike;
}

/** Extends the stream `connectionId` with `token`; rejects with a `refresh_failed` error. */
export async function refreshStreamToken(input: RefreshInput): Promise<void> {
  let response: Response;
  try {
    response = await input.fetch(buildUrl(input.baseUrl, refreshPath(input.connectionId), {}), {
      method: 'POST',
      headers: { authorization: `Bearer ${input.token}` },
    });
  } catch (cause) {
    throw new SSEClientError('refresh_failed', 'token refresh request failed', { cause });
  }
  if (response.ok) return void response.body?.cancel().catch(() => undefined);
  const end = await failureFromResponse(response);
  const cause = end.kind === 'failed' ? end.error : undefined;
  throw new SSEClientError('refresh_failed', `token refresh answered HTTP ${response.status}`, {
    status: response.status,
    serverCode: cause?.serverCode,
    retryAfterMs: end.kind === 'failed' ? end.retryAfterMs : undefined,
    cause,
  });
}
