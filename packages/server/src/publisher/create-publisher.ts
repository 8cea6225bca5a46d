/**
 * The publisher SDK: `POST /api/events` from a team's own backend, with the retries a service
 * needs and none of the duplicates a naive retry makes. One publish sends one `Idempotency-Key`
 * on every try, so a try whose answer was lost (timeout, dropped connection, 503 after the server
 * committed) is answered with the first event's id instead of creating a second one.
 *
 * Standalone: it talks HTTP only (global `fetch`), so it runs wherever the server's package is
 * installed, also in processes that never start the server.
 */
import type { EventPayload } from '@infinitescribe/protocol';
import { PublishError } from './publish-error.js';

/** What a token may publish through the HTTP API when no custom types are given: `notification`. */
export type BuiltInPublishable = { notification: EventPayload<'notification'> };

/** One publish. `TEvents` maps each publishable type to its payload. */
export type PublishInput<TEvents extends Record<string, unknown>> = {
  [TType in keyof TEvents & string]: {
    topic: string;
    type: TType;
    payload: TEvents[TType];
    /** Stored durably before the server answers (201); see the HTTP API. */
    critical?: boolean;
    /** Reuse a key of your own (1–128 of [0-9A-Za-z._:-]), e.g. derived from your own record's id. */
    idempotencyKey?: string;
  };
}[keyof TEvents & string];

/** Options of {@link createPublisher}. */
export interface PublisherOptions {
  /** The server's origin (and path prefix, if the plugin is mounted under one). */
  baseUrl: string;
  /** A bearer token with `events:publish`, or a function returning one (called per try, so it can refresh). */
  token: string | (() => string | Promise<string>);
  /** Retries after the first try. Default 5. */
  retries?: number;
  /** Each try is abandoned after this long (then retried: the key makes that safe). Default 10,000. */
  timeoutMs?: number;
  /** Backoff: the first retry waits up to `baseDelayMs` (full jitter), doubling per retry, at most `maxDelayMs`. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
  /** Random source in [0, 1) for the jitter (tests inject a fixed one). */
  random?: () => number;
  /** Makes idempotency keys (default: `crypto.randomUUID`). */
  newKey?: () => string;
}

/** Publishes events; see {@link createPublisher}. `TEvents`: the host's own event types, beside `notification`. */
export interface Publisher<TEvents extends Record<string, unknown> = Record<never, never>> {
  /**
   * Publishes one event and resolves with its id once the server accepted it (202) or, for a
   * critical one, stored it (201).
   * @throws PublishError with the API's `code` and the HTTP `status` (absent for network errors).
   */
  publish(
    input: PublishInput<BuiltInPublishable & TEvents>,
    options?: { signal?: AbortSignal },
  ): Promise<{ id: string }>;
}

const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);
const DEFAULTS = { retries: 5, timeoutMs: 10_000, baseDelayMs: 200, maxDelayMs: 10_000 };
/** A `Retry-After` longer than this is cut short: the caller's own deadline is the better judge. */
const MAX_RETRY_AFTER_MS = 60_000;

/**
 * A publisher for one server and one token. Retries network errors, timeouts, 429, 502, 503 and
 * 504 with exponential backoff and full jitter, honouring `Retry-After`; gives up at once on
 * answers that a retry cannot change (400, 401, 403, 413, 422).
 * @example
 * const publisher = createPublisher({ baseUrl: 'http://127.0.0.1:3000', token: serviceToken });
 * const { id } = await publisher.publish({ topic: 'user:u1', type: 'notification', payload: { title: 'Hi', level: 'info' } });
 * // With the host's own types: createPublisher<{ 'comment.added': { docId: string; text: string } }>(…)
 */
export function createPublisher<TEvents extends Record<string, unknown> = Record<never, never>>(
  options: PublisherOptions,
): Publisher<TEvents> {
  const settings = { ...DEFAULTS, ...definedOnly(options) };
  const doFetch = options.fetch ?? globalThis.fetch;
  const random = options.random ?? Math.random;
  const newKey = options.newKey ?? (() => crypto.randomUUID());
  const url = new URL('api/events', options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`);

  const token = async () => (typeof options.token === 'function' ? await options.token() : options.token);

  async function tryOnce(body: string, key: string, signal: AbortSignal | undefined): Promise<{ id: string }> {
    const timeout = AbortSignal.timeout(settings.timeoutMs);
    const trySignal = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let response: Response;
    try {
      response = await doFetch(url, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${await token()}`,
          'content-type': 'application/json',
          'idempotency-key': key,
        },
        body,
        signal: trySignal,
      });
    } catch (error) {
      if (signal?.aborted) throw new PublishError('aborted', 'the publish was aborted', { cause: error });
      const timedOut = timeout.aborted;
      throw new PublishError(
        timedOut ? 'timeout' : 'network_error',
        timedOut ? `no answer within ${settings.timeoutMs} ms` : `could not reach ${url.origin}: ${describe(error)}`,
        { retryable: true, cause: error },
      );
    }
    const text = await response.text().catch(() => '');
    const json = parseJson(text);
    if (response.ok && typeof json?.['id'] === 'string') return { id: json['id'] };
    const problem = (json?.['error'] ?? {}) as { code?: unknown; message?: unknown };
    const code = typeof problem.code === 'string' ? problem.code : response.ok ? 'invalid_answer' : 'http_error';
    const message =
      typeof problem.message === 'string' ? problem.message : `HTTP ${response.status} ${text.slice(0, 200)}`.trim();
    throw new PublishError(code, message, {
      status: response.status,
      retryable: RETRYABLE_STATUS.has(response.status) || code === 'idempotency_key_in_flight',
      retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
    });
  }

  return {
    async publish(input, publishOptions = {}) {
      const { idempotencyKey, ...event } = input;
      const key = idempotencyKey ?? newKey();
      const body = JSON.stringify(event);
      const { signal } = publishOptions;
      for (let attempt = 0; ; attempt++) {
        try {
          return await tryOnce(body, key, signal);
        } catch (error) {
          const problem = error instanceof PublishError ? error : new PublishError('internal_error', describe(error));
          if (!problem.retryable || attempt >= settings.retries) throw problem;
          const window = Math.min(settings.maxDelayMs, settings.baseDelayMs * 2 ** attempt);
          const jittered = Math.floor(random() * window);
          const delay = Math.max(jittered, Math.min(problem.retryAfterMs ?? 0, MAX_RETRY_AFTER_MS));
          await sleep(delay, signal);
        }
      }
    },
  };
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Partial<T>;
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** `Retry-After` as delta-seconds or an HTTP date, in ms; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | null, now = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return `${error.message}${cause}`;
  }
  return String(error);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new PublishError('aborted', 'the publish was aborted'));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new PublishError('aborted', 'the publish was aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
