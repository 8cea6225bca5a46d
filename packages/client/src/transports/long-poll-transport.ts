/**
 * @module The fallback transport: one `GET /api/sse/poll?after=&timeoutMs=` per attempt, for
 * networks whose proxies buffer streams. It reports the answer's events as the same messages a
 * stream would carry (reset first, then the events in order, then the cursor) and ends; the
 * controller starts the next poll at once.
 */
import { SSEClientError } from '../errors.js';
import {
  buildUrl,
  failureFromResponse,
  isRecord,
  networkFailure,
  type Transport,
  type TransportHandlers,
  type TransportRequest,
} from '../transport.js';
import { POLL_PATH } from '../wire.js';

/** Options of {@link openLongPollTransport}. */
export interface LongPollOptions {
  /** How long the server may hold the poll (the API: at most 30 000). */
  timeoutMs: number;
  /** Extra time before the client gives up on an answer that never comes. */
  graceMs: number;
}

/** Opens one long-poll. */
export function openLongPollTransport(
  request: TransportRequest,
  handlers: TransportHandlers,
  options: LongPollOptions,
): Transport {
  const abort = new AbortController();
  let isClosed = false;
  const end: TransportHandlers['onEnd'] = (result) => {
    if (isClosed) return;
    isClosed = true;
    clearTimeout(deadline);
    abort.abort();
    handlers.onEnd(result);
  };
  const deadline = setTimeout(() => {
    end({
      kind: 'failed',
      error: new SSEClientError('network_error', `no poll answer within ${options.timeoutMs + options.graceMs} ms`),
    });
  }, options.timeoutMs + options.graceMs);

  const url = buildUrl(request.baseUrl, POLL_PATH, {
    after: request.lastEventId ?? undefined,
    timeoutMs: String(options.timeoutMs),
    topics: request.topics.join(','),
  });

  void (async () => {
    let body: unknown;
    try {
      const response = await request.fetch(url, {
        method: 'GET',
        headers: { accept: 'application/json', authorization: `Bearer ${request.token}` },
        cache: 'no-store',
        signal: abort.signal,
      });
      if (isClosed) return;
      if (!response.ok) return end(await failureFromResponse(response));
      body = await response.json();
    } catch (error) {
      if (error instanceof SyntaxError) return end(badResponse('poll answer is not JSON'));
      return end(networkFailure(error));
    }
    if (isClosed) return;
    if (!isRecord(body) || !Array.isArray(body['events'])) return end(badResponse('poll answer has no events'));
    if (isRecord(body['reset'])) handlers.onMessage({ event: 'stream.reset', data: JSON.stringify(body['reset']) });
    for (const event of body['events']) {
      if (isClosed) return;
      if (!isRecord(event)) continue;
      const { id, ...envelope } = event;
      if (typeof id !== 'string' || typeof envelope['type'] !== 'string') continue;
      handlers.onMessage({ event: envelope['type'], id, data: JSON.stringify(envelope) });
    }
    if (isClosed) return;
    const cursor = body['lastEventId'];
    if (typeof cursor === 'string' && cursor !== '') handlers.onCursor(cursor);
    end({ kind: 'ended' });
  })();

  return {
    kind: 'long-poll',
    close() {
      isClosed = true;
      clearTimeout(deadline);
      abort.abort();
    },
  };
}

function badResponse(message: string): { kind: 'failed'; error: SSEClientError } {
  return { kind: 'failed', error: new SSEClientError('bad_response', message, { status: 200 }) };
}
