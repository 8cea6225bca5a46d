/**
 * @module The one error class of the client, with a code per failure.
 */

/**
 * Every failure the client reports, on the `error` event and in the snapshot's `error`.
 * - `unauthorized` / `forbidden` / `http_error`: the server answered 401 / 403 / another status.
 * - `network_error`: the request failed or the stream broke before the server ended it.
 * - `bad_response`: a 200 that was not an event stream (or not the poll JSON).
 * - `heartbeat_timeout` / `first_byte_timeout`: the stream went silent / never started.
 * - `token_error`: `getToken()` threw or returned an empty token.
 * - `refresh_failed`: `auth.expiring` could not be answered by a refresh.
 * - `invalid_event`: an event's `data:` was not the JSON envelope the protocol promises.
 * - `handler_error`: one of the app's handlers threw (the stream goes on).
 * - `internal_error`: a bug in the client itself (an illegal state transition); please report it.
 * @example client.on('error', (error) => metrics.count(`sse_client_${error.code}`));
 */
export type SSEClientErrorCode =
  | 'unauthorized'
  | 'forbidden'
  | 'http_error'
  | 'network_error'
  | 'bad_response'
  | 'heartbeat_timeout'
  | 'first_byte_timeout'
  | 'token_error'
  | 'refresh_failed'
  | 'invalid_event'
  | 'handler_error'
  | 'internal_error';

/**
 * Structured fields of an {@link SSEClientError}.
 * @example if (error.status === 429) showBusyNotice();
 */
export interface SSEClientErrorDetails {
  /** HTTP status, when the server answered. */
  status?: number;
  /** The server's error code (`{"error": {"code"}}`), when it sent one. */
  serverCode?: string;
  /** The answer's `Retry-After`, in ms, when it sent one. */
  retryAfterMs?: number;
  /** What went wrong underneath. */
  cause?: unknown;
}

/**
 * A coded client failure. Messages start with the package name so logs say where they come from.
 * @example client.on('error', (error) => { if (error.code === 'unauthorized') logout(); });
 */
export class SSEClientError extends Error {
  override readonly name = 'SSEClientError';
  readonly code: SSEClientErrorCode;
  readonly status: number | undefined;
  readonly serverCode: string | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(code: SSEClientErrorCode, message: string, details: SSEClientErrorDetails = {}) {
    super(`@infinitescribe/client: ${message}`, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.status = details.status;
    this.serverCode = details.serverCode;
    this.retryAfterMs = details.retryAfterMs;
  }
}
