/**
 * Every error code the HTTP API can answer with, as docs/http-api.md lists them.
 * A code is never reused for another meaning once it has shipped.
 */
export const ERROR_CODES = [
  'invalid_json',
  'invalid_event',
  'invalid_request',
  'unauthorized',
  'forbidden',
  'forbidden_topic',
  'forbidden_type',
  'not_found',
  'request_timeout',
  'payload_too_large',
  'url_too_long',
  'headers_too_large',
  'too_many_connections',
  'rate_limited',
  'idempotency_key_in_flight',
  'idempotency_key_reused',
  'store_unavailable',
  'bus_unavailable',
  'auth_unavailable',
  'shutting_down',
  'internal_error',
] as const;

/** One of {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** The JSON body of every error response: `{"error": {"code", "message"}}`. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}
