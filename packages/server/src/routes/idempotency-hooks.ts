import { createHash } from 'node:crypto';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, UnavailableError } from '../core/errors.js';
import type { BeginOutcome, IdempotencyClaim, IdempotencyStore } from '../adapters/idempotency/idempotency-store.js';

/** The request header; its value is the client's key for one logical request and its retries. */
export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
/** Set on an answer that was replayed from the first request with the same key. */
export const IDEMPOTENT_REPLAYED_HEADER = 'idempotent-replayed';

/** A well-formed `Idempotency-Key`: 1–128 characters of `[0-9A-Za-z._:-]`. */
export const IDEMPOTENCY_KEY_PATTERN = /^[0-9A-Za-z._:-]{1,128}$/;

/** Options of {@link createIdempotencyHooks}. */
export interface IdempotencyHooksOptions {
  store: IdempotencyStore;
  /** Whose key it is (keys of different publishers never meet); runs after authentication. */
  scopeOf(request: FastifyRequest): string;
  logger: FastifyBaseLogger;
  /**
   * How long a duplicate waits for the answer of the request that holds its key before it gets
   * 409 `idempotency_key_in_flight`. Default 10 s: a publish is bounded well below it.
   */
  waitMs?: number;
}

/** Route hooks that make a route idempotent under `Idempotency-Key`. */
export interface IdempotencyHooks {
  preHandler(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined>;
  onSend(request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown>;
}

/**
 * `Idempotency-Key` for one route. Before the handler, the key is claimed for this publisher and
 * body, or the first request's answer is replayed (same status and body, plus
 * `Idempotent-Replayed: true`), or a duplicate waits for the request that is still running; a
 * key used with another body is 422 `idempotency_key_reused`, a malformed key 400
 * `invalid_request`. After the handler, a 2xx answer is stored; anything else releases the key,
 * so that a retry of a failed request runs again. No header: the route runs as before.
 * @example app.post('/api/events', { preHandler: [hooks.preHandler], onSend: hooks.onSend }, handler)
 */
export function createIdempotencyHooks(options: IdempotencyHooksOptions): IdempotencyHooks {
  const { store, logger } = options;
  const waitMs = options.waitMs ?? 10_000;
  const claims = new WeakMap<FastifyRequest, IdempotencyClaim>();

  const begin = async (key: string, fingerprint: string): Promise<BeginOutcome> => {
    try {
      return await store.begin(key, fingerprint);
    } catch (error) {
      throw new UnavailableError('bus_unavailable', 'idempotency keys cannot be checked: Redis is unavailable', error);
    }
  };

  return {
    async preHandler(request, reply) {
      const header = request.headers[IDEMPOTENCY_KEY_HEADER];
      if (header === undefined) return undefined;
      if (typeof header !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(header)) {
        throw new AppError('invalid_request', 'Idempotency-Key must be 1 to 128 characters of 0-9 A-Z a-z . _ : -');
      }
      const key = scopedKey(options.scopeOf(request), header);
      const fingerprint = fingerprintOf(request.body);
      const deadline = Date.now() + waitMs;
      for (let pause = 10; ; pause = Math.min(pause * 2, 200)) {
        const outcome = await begin(key, fingerprint);
        switch (outcome.kind) {
          case 'claimed':
            claims.set(request, outcome.claim);
            return undefined;
          case 'answered':
            return reply
              .code(outcome.answer.status)
              .header('content-type', 'application/json; charset=utf-8')
              .header(IDEMPOTENT_REPLAYED_HEADER, 'true')
              .send(outcome.answer.body);
          case 'reused':
            throw new AppError('idempotency_key_reused', 'this Idempotency-Key was already used with another body');
          case 'in_flight': {
            const left = deadline - Date.now();
            if (left <= 0) {
              throw new AppError('idempotency_key_in_flight', 'a request with this Idempotency-Key is still running', {
                headers: { 'retry-after': '1' },
              });
            }
            await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
          }
        }
      }
    },

    // onSend runs for the handler's answer and for an error answer alike, also when the client
    // has gone away meanwhile: the answer is stored for the retry it will send.
    async onSend(request, reply, payload) {
      const claim = claims.get(request);
      if (!claim) return payload;
      claims.delete(request);
      const succeeded = reply.statusCode >= 200 && reply.statusCode < 300 && typeof payload === 'string';
      try {
        if (succeeded) await store.complete(claim, { status: reply.statusCode, body: payload });
        else await store.release(claim);
      } catch (error) {
        // The answer still goes out; a retry then waits for the claim to lapse (claimTtlMs) and runs again.
        logger.warn({ err: error, status: reply.statusCode }, 'idempotency key not updated: its store failed');
      }
      return payload;
    },
  };
}

/** The store's key: the publisher and its key, hashed (a `sub` may be long or hold any character). */
function scopedKey(scope: string, key: string): string {
  return createHash('sha256').update(`${scope}\n${key}`).digest('base64url');
}

/** Identifies a body by its content: the same JSON with its keys in another order is the same body. */
function fingerprintOf(body: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify(body ?? null, (_key, value: unknown) => sortKeys(value)))
    .digest('base64url');
}

function sortKeys(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
