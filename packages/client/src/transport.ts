/**
 * @module The transport port: one interface for the fetch stream, the native EventSource and the
 * long-poll, so the connection controller drives all three the same way. A transport is one
 * attempt: it connects once, reports what arrives, reports how it ended, and never retries on its
 * own (every retry, backoff and token decision belongs to the controller).
 */
import type { TransportKind } from './connection-state.js';
import { SSEClientError } from './errors.js';

/**
 * `fetch` as the client calls it; inject one in tests or to add headers. Default `globalThis.fetch`.
 * @example createSSEClient({ url, getToken, fetch: (input, init) => fetch(input, { ...init, credentials: 'include' }) })
 */
export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** One frame: `event:` name, `data:` text, and `id:` for published events only. */
export interface TransportMessage {
  event: string;
  data: string;
  id?: string | undefined;
}

/**
 * How an attempt ended. `ended`: the server finished it (a stream closed, a poll answered).
 * `failed`: it never worked or broke; `retryAfterMs` carries a `Retry-After`.
 */
export type TransportEnd =
  { kind: 'ended' } | { kind: 'failed'; error: SSEClientError; retryAfterMs?: number | undefined };

/** What a transport reports to the controller. */
export interface TransportHandlers {
  onMessage(message: TransportMessage): void;
  /** The server's `retry:` field. */
  onRetry(retryMs: number): void;
  /** A resume point that is not an event (the long-poll's `lastEventId` when nothing arrived). */
  onCursor(id: string): void;
  /** Called once, unless the controller closed the transport first. */
  onEnd(end: TransportEnd): void;
}

/** Everything one attempt needs. */
export interface TransportRequest {
  baseUrl: string;
  topics: readonly string[];
  lastEventId: string | null;
  /** The Bearer token of this attempt; never empty (the client never connects anonymously). */
  token: string;
  fetch: FetchLike;
}

/** A running attempt. `close()` stops it silently: no `onEnd` after it. */
export interface Transport {
  readonly kind: TransportKind;
  close(): void;
}

/** Opens one attempt. */
export type TransportFactory = (request: TransportRequest, handlers: TransportHandlers) => Transport;

/** `base + path + ?query`, leaving out empty parameters. A base of `''` gives a same-origin path. */
export function buildUrl(baseUrl: string, path: string, query: Record<string, string | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) if (value !== undefined && value !== '') search.set(name, value);
  const text = search.toString();
  return `${baseUrl.replace(/\/+$/, '')}${path}${text ? `?${text}` : ''}`;
}

/** `Retry-After` in ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Turns a non-2xx response into a failure, reading the API's `{"error": {code, message}}` if present. */
export async function failureFromResponse(response: Response): Promise<TransportEnd> {
  let serverCode: string | undefined;
  let serverMessage: string | undefined;
  try {
    const body: unknown = await response.json();
    const error = isRecord(body) && isRecord(body['error']) ? body['error'] : undefined;
    if (error && typeof error['code'] === 'string') serverCode = error['code'];
    if (error && typeof error['message'] === 'string') serverMessage = error['message'];
  } catch {
    // Not JSON (a proxy's HTML page): the status says enough.
  }
  const { status } = response;
  const code = status === 401 ? 'unauthorized' : status === 403 ? 'forbidden' : 'http_error';
  const message = `HTTP ${status}${serverCode ? ` ${serverCode}` : ''}${serverMessage ? `: ${serverMessage}` : ''}`;
  return {
    kind: 'failed',
    error: new SSEClientError(code, message, { status, serverCode }),
    retryAfterMs: parseRetryAfter(response.headers.get('retry-after'), Date.now()),
  };
}

/** A failure of the network itself (the fetch rejected, the body broke). */
export function networkFailure(cause: unknown): TransportEnd {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return { kind: 'failed', error: new SSEClientError('network_error', `network error: ${detail}`, { cause }) };
}

/** Narrows `unknown` to a plain object. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
