/**
 * @module The default transport: `GET /api/sse/stream` over `fetch`, read as a ReadableStream and
 * parsed by eventsource-parser. Unlike a native EventSource it can send `Authorization: Bearer`
 * (a fresh token on every attempt), sees the HTTP status of a refusal (401/403/429), and honours
 * `Retry-After`.
 */
import { createParser } from 'eventsource-parser';
import { SSEClientError } from '../errors.js';
import {
  buildUrl,
  failureFromResponse,
  networkFailure,
  type Transport,
  type TransportHandlers,
  type TransportRequest,
} from '../transport.js';
import { LAST_EVENT_ID_HEADER, STREAM_PATH } from '../wire.js';

/**
 * Bounds what the parser buffers for one unfinished event (a completed generation's full text is
 * the largest legitimate one); past it the stream is broken and the attempt fails.
 */
const MAX_EVENT_CHARS = 8 * 1024 * 1024;

/** Opens a streaming `fetch` attempt. */
export function openFetchTransport(request: TransportRequest, handlers: TransportHandlers): Transport {
  const abort = new AbortController();
  let isClosed = false;
  const end: TransportHandlers['onEnd'] = (result) => {
    if (isClosed) return;
    isClosed = true;
    abort.abort();
    handlers.onEnd(result);
  };

  const headers: Record<string, string> = {
    accept: 'text/event-stream',
    authorization: `Bearer ${request.token}`,
  };
  // The header wins over the query (docs/http-api.md); the id alphabet keeps it CORS-safe.
  if (request.lastEventId !== null) headers[LAST_EVENT_ID_HEADER] = request.lastEventId;
  const url = buildUrl(request.baseUrl, STREAM_PATH, { topics: request.topics.join(',') });

  void (async () => {
    let response: Response;
    try {
      response = await request.fetch(url, { method: 'GET', headers, cache: 'no-store', signal: abort.signal });
    } catch (error) {
      return end(networkFailure(error));
    }
    if (isClosed) return void response.body?.cancel().catch(() => undefined);
    if (!response.ok) return end(await failureFromResponse(response));
    const contentType = response.headers.get('content-type') ?? '';
    if (!contentType.toLowerCase().startsWith('text/event-stream') || !response.body) {
      void response.body?.cancel().catch(() => undefined);
      return end({
        kind: 'failed',
        error: new SSEClientError('bad_response', `expected text/event-stream, got "${contentType}"`, {
          status: response.status,
        }),
      });
    }
    await readStream(response.body, { handlers, isClosed: () => isClosed, end });
  })();

  return {
    kind: 'fetch',
    close() {
      isClosed = true;
      abort.abort();
    },
  };
}

async function readStream(
  body: ReadableStream<Uint8Array>,
  context: { handlers: TransportHandlers; isClosed: () => boolean; end: TransportHandlers['onEnd'] },
): Promise<void> {
  const { handlers, isClosed, end } = context;
  let parseFailure: SSEClientError | undefined;
  const parser = createParser({
    onEvent: (message) => {
      if (!isClosed()) handlers.onMessage({ event: message.event ?? 'message', data: message.data, id: message.id });
    },
    onRetry: (retryMs) => handlers.onRetry(retryMs),
    onError: (error) => {
      // Unknown fields and odd retry values are ignored, as a browser would; only overflow is fatal.
      if (error.type === 'max-buffer-size-exceeded') {
        parseFailure = new SSEClientError('bad_response', error.message, { cause: error });
      }
    },
    maxBufferSize: MAX_EVENT_CHARS,
  });
  const decoder = new TextDecoder();
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (isClosed()) return void reader.cancel().catch(() => undefined);
      if (done) break;
      parser.feed(decoder.decode(value, { stream: true }));
      if (parseFailure) {
        void reader.cancel().catch(() => undefined);
        return end({ kind: 'failed', error: parseFailure });
      }
    }
  } catch (error) {
    return end(networkFailure(error));
  }
  end({ kind: 'ended' });
}
