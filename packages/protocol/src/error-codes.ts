/**
 * Every error code the HTTP API can answer with, as written in shared/API.md.
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
