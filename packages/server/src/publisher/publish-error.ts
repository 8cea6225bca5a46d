/**
 * Why a publish failed: the API's error `code` (`invalid_event`, `forbidden_type`,
 * `store_unavailable`, `rate_limited`, …) and the HTTP `status`, or one of the SDK's own codes for
 * what never got an answer: `network_error`, `timeout`, `aborted`, `invalid_answer`, `http_error`.
 */
export class PublishError extends Error {
  readonly code: string;
  /** The HTTP status of the last answer; absent when no answer came. */
  readonly status: number | undefined;
  /** Whether another try could succeed (the SDK retries these until `retries` is spent). */
  readonly retryable: boolean;
  /** The server's `Retry-After`, in ms. */
  readonly retryAfterMs: number | undefined;

  constructor(
    code: string,
    message: string,
    options: { status?: number; retryable?: boolean; retryAfterMs?: number | undefined; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'PublishError';
    this.code = code;
    this.status = options.status;
    this.retryable = options.retryable ?? false;
    this.retryAfterMs = options.retryAfterMs;
  }
}
