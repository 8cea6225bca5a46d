import type { ErrorCode } from '@infinitescribe/protocol';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { AppError } from '../core/errors.js';
import type { Metrics } from '../adapters/observability/metrics.js';

const FASTIFY_CODES: Record<string, AppError['code']> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'invalid_request',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
  FST_ERR_VALIDATION: 'invalid_request',
  FST_ERR_BAD_URL: 'invalid_request',
  FST_ERR_MAX_PARAM_LENGTH: 'url_too_long',
};

/**
 * What a 5xx tells the client, fixed per code: a dependency's raw error (an internal address, a
 * driver message) never leaves the server; the full message and its cause are logged instead.
 */
const SERVER_ERROR_MESSAGES: Partial<Record<ErrorCode, string>> = {
  store_unavailable: 'the event store is unavailable; retry later',
  bus_unavailable: 'the event bus is unavailable; retry later',
  shutting_down: 'this instance is shutting down; reconnect (another instance answers)',
  internal_error: 'internal error',
};

/** The body of `error` as the client sees it (5xx messages replaced, see above). */
function publicBody(error: AppError): ReturnType<AppError['toBody']> {
  const body = error.toBody();
  const message = SERVER_ERROR_MESSAGES[error.code];
  return message === undefined ? body : { error: { code: error.code, message } };
}

/** Normalizes anything thrown into an {@link AppError}, at the HTTP boundary only. */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  const fastifyError = error as Partial<FastifyError>;
  const mapped = fastifyError.code ? FASTIFY_CODES[fastifyError.code] : undefined;
  if (mapped) return new AppError(mapped, fastifyError.message ?? mapped, { cause: error });
  if (typeof fastifyError.statusCode === 'number' && fastifyError.statusCode < 500) {
    return new AppError('invalid_request', fastifyError.message ?? 'invalid request', { cause: error });
  }
  return new AppError('internal_error', 'internal error', { cause: error });
}

/**
 * Every error leaves as `{"error": {"code", "message"}}` with the status of its code; 5xx are
 * logged with their cause, 4xx are the client's business and logged at debug only.
 */
export function registerErrorHandling(app: FastifyInstance, metrics: Metrics): void {
  // Tolerates an empty JSON body (POST /api/sse/ticket is "empty body") and reports bad JSON in
  // our own error shape.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      done(new AppError('invalid_json', `body is not valid JSON: ${(error as Error).message}`), undefined);
    }
  });
  app.setErrorHandler((error, request, reply) => {
    const appError = toAppError(error);
    metrics.errors.inc({ code: appError.code });
    if (appError.status >= 500) request.log.error({ err: appError.cause ?? appError }, appError.message);
    else request.log.debug({ code: appError.code }, appError.message);
    return reply.code(appError.status).headers(appError.headers).send(publicBody(appError));
  });
}

/** Counts an error the API answers (sse_errors_total{code}); hosts pass the plugin's when they have it. */
export type ErrorCounter = (code: ErrorCode) => void;

/**
 * A 404 in the API's error shape, for hosts whose unknown URLs should answer like the API (the
 * standalone host; a team's own backend usually keeps its own). Fastify allows one per prefix.
 */
export function registerNotFound(app: FastifyInstance, countError: ErrorCounter = () => undefined): void {
  app.setNotFoundHandler((request, reply) => {
    countError('not_found');
    return reply
      .code(404)
      .send(new AppError('not_found', `no route ${request.method} ${request.url.split('?')[0]}`).toBody());
  });
}

/**
 * Fastify's framework-level errors (a URL that does not decode, a path parameter over its length)
 * answered in the API's error shape instead of Fastify's own.
 */
export function frameworkErrorHandler(
  countError: ErrorCounter = () => undefined,
): NonNullable<FastifyServerOptions['frameworkErrors']> {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const appError = toAppError(error);
    countError(appError.code);
    request.log.debug({ code: appError.code }, appError.message);
    void reply.code(appError.status).headers(appError.headers).send(publicBody(appError));
  };
}

/** The errors Node's HTTP parser and server raise before any route runs; others are bad framing. */
const CLIENT_ERRORS: Record<string, { code: ErrorCode; message: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: {
    code: 'request_timeout',
    message: 'the request did not arrive in time (REQUEST_TIMEOUT_MS)',
  },
  HPE_HEADER_OVERFLOW: { code: 'headers_too_large', message: 'the request line and headers are too large' },
  HPE_CHUNK_EXTENSIONS_OVERFLOW: { code: 'payload_too_large', message: 'chunk extensions are too large' },
};
const BAD_FRAMING = { code: 'invalid_request', message: 'malformed HTTP request' } as const;

/**
 * Fastify's `clientErrorHandler`: what Node's HTTP parser refuses itself (bad framing, oversized
 * headers, a request too slow to arrive) still gets `{"error": {"code", "message"}}`, then the
 * connection is closed (after a parse error the rest of its bytes cannot be trusted).
 */
export function clientErrorHandler(
  countError: ErrorCounter = () => undefined,
): (error: Error & { code?: string }, socket: Socket) => void {
  return (error, socket) => {
    // A reset connection, or one already gone: nobody to answer.
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const { code, message } = CLIENT_ERRORS[error.code ?? ''] ?? BAD_FRAMING;
    const appError = new AppError(code, message);
    countError(code);
    if (socket.writable) {
      const body = JSON.stringify(appError.toBody());
      socket.write(
        `HTTP/1.1 ${appError.status} ${STATUS_CODES[appError.status] ?? ''}\r\n` +
          `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
          `Connection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  };
}
