import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** One stream read by a test: every parsed event, in order. */
export interface StreamReader {
  status: number;
  headers: Headers;
  /** Parsed events (control and published), in arrival order. */
  events: EventSourceMessage[];
  /** `retry:` values seen. */
  retries: number[];
  /** The raw text received, for byte-level assertions. */
  raw(): string;
  /** Resolves when `predicate` holds for the events received so far (polls every 5 ms). */
  waitFor(predicate: (events: EventSourceMessage[]) => boolean, timeoutMs?: number): Promise<void>;
  /** Resolves when the server has ended the stream. */
  ended: Promise<void>;
  close(): void;
}

/** Options of {@link openStream}. */
export interface OpenStreamOptions {
  token?: string;
  lastEventId?: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
}

/**
 * Opens `GET <baseUrl>/api/sse/stream` with fetch and parses it with eventsource-parser (a third-party
 * parser, so the tests check our framing against someone else's reading of the spec).
 */
export async function openStream(baseUrl: string, options: OpenStreamOptions = {}): Promise<StreamReader> {
  // Under the base URL's path, so a plugin mounted under a prefix is reached there.
  const url = new URL('api/sse/stream', baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  for (const [name, value] of Object.entries(options.query ?? {})) url.searchParams.set(name, value);
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers['authorization'] = `Bearer ${options.token}`;
  if (options.lastEventId !== undefined) headers['last-event-id'] = options.lastEventId;
  const abort = new AbortController();
  const response = await fetch(url, { headers, signal: abort.signal });
  const events: EventSourceMessage[] = [];
  const retries: number[] = [];
  let text = '';
  const parser = createParser({ onEvent: (event) => events.push(event), onRetry: (ms) => retries.push(ms) });
  const ended = (async () => {
    if (!response.body) return;
    const decoder = new TextDecoder();
    try {
      for await (const chunk of response.body) {
        const piece = decoder.decode(chunk as Uint8Array, { stream: true });
        text += piece;
        parser.feed(piece);
      }
    } catch {
      // Aborted by close(), or the connection was cut: both simply end the stream.
    }
  })();
  return {
    status: response.status,
    headers: response.headers,
    events,
    retries,
    raw: () => text,
    ended,
    async waitFor(predicate, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(events)) {
        if (Date.now() > deadline) {
          throw new Error(`timed out waiting; got ${events.length} events: ${JSON.stringify(events.slice(-5))}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
    close: () => abort.abort(),
  };
}

/** Only the published events (those with an id). */
export function published(events: readonly EventSourceMessage[]): EventSourceMessage[] {
  return events.filter((event) => event.id !== undefined);
}

/** Events of one type, data parsed. */
export function ofType<T = unknown>(events: readonly EventSourceMessage[], type: string): T[] {
  return events.filter((event) => event.event === type).map((event) => JSON.parse(event.data) as T);
}
