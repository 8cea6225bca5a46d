import type { FastifyError, FastifyInstance } from 'fastify';
import { AppError } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';

const FASTIFY_CODES: Record<string, AppError['code']> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'invalid_request',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
  FST_ERR_VALIDATION: 'invalid_request',
};

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
    return reply.code(appError.status).headers(appError.headers).send(appError.toBody());
  });
  app.setNotFoundHandler((request, reply) => {
    metrics.errors.inc({ code: 'not_found' });
    return reply
      .code(404)
      .send(new AppError('not_found', `no route ${request.method} ${request.url.split('?')[0]}`).toBody());
  });
}
