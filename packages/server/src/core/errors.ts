import type { ErrorBody, ErrorCode } from '@infinitescribe/protocol';

/** HTTP status of every error code; a `Record` so a new code cannot ship without one. */
export const ERROR_STATUS: Record<ErrorCode, number> = {
  invalid_json: 400,
  invalid_event: 400,
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  forbidden_topic: 403,
  forbidden_type: 403,
  not_found: 404,
  request_timeout: 408,
  payload_too_large: 413,
  url_too_long: 414,
  headers_too_large: 431,
  too_many_connections: 429,
  rate_limited: 429,
  idempotency_key_in_flight: 409,
  idempotency_key_reused: 422,
  store_unavailable: 503,
  bus_unavailable: 503,
  auth_unavailable: 503,
  shutting_down: 503,
  internal_error: 500,
};

/** Base of every error the API answers with: a stable `code`, a human message, optional headers. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; headers?: Record<string, string> } = {}) {
    super(message, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.headers = options.headers ?? {};
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }

  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message } };
  }
}

/**
 * A failure whose message is written for users (a task kind's TaskError, a ProviderError): a job
 * that ends with one shows its message in `failed.error`. Any other error's message may carry
 * internals, so users get a generic one and the log gets the error (see {@link userMessageOf}).
 */
export class UserSafeError extends Error {}

/** The message of `error` if it is meant for users (an AppError or a UserSafeError), else `fallback`. */
export function userMessageOf(error: unknown, fallback: string): string {
  return error instanceof AppError || error instanceof UserSafeError ? error.message : fallback;
}

/** Missing, malformed, forged or expired credentials; a reused ticket. */
export class UnauthorizedError extends AppError {
  constructor(message: string, cause?: unknown) {
    super('unauthorized', message, { cause });
    this.name = 'UnauthorizedError';
  }
}

/** Authenticated, but the token does not grant the topic (to receive it, or to publish to it). */
export class ForbiddenTopicError extends AppError {
  readonly topic: string;
  constructor(topic: string, message = `the token does not grant topic "${topic}"`) {
    super('forbidden_topic', message);
    this.name = 'ForbiddenTopicError';
    this.topic = topic;
  }
}

/** A connection limit is reached; `retryAfterSeconds` goes out as `Retry-After`. */
export class TooManyConnectionsError extends AppError {
  constructor(message: string, retryAfterSeconds: number) {
    super('too_many_connections', message, { headers: { 'retry-after': String(retryAfterSeconds) } });
    this.name = 'TooManyConnectionsError';
  }
}

/** The event fails the catalogue: unknown type, bad payload or bad topic. */
export class InvalidEventError extends AppError {
  constructor(message: string) {
    super('invalid_event', message);
    this.name = 'InvalidEventError';
  }
}

/** A dependency that an operation needs is down (store, bus). */
export class UnavailableError extends AppError {
  constructor(code: 'store_unavailable' | 'bus_unavailable', message: string, cause?: unknown) {
    super(code, message, { cause, headers: { 'retry-after': '5' } });
    this.name = 'UnavailableError';
  }
}
