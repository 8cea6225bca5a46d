/**
 * @module A scripted fake of the *network* for unit tests of the client: `fetch` that records each
 * request and lets the test answer it (an SSE body it pushes text into, JSON, a network error, or
 * nothing at all, like a buffering proxy). Why a fake and not the real server: the client's
 * policies are about timing (backoff, watchdog, first-byte timeouts, fallback) and about failures
 * a healthy server never produces on cue; with fake timers they run in milliseconds and exactly.
 * The real server's contract is covered by apps/backend's tests. To extend it, add a `respond*`
 * method on `PendingRequest`: the transports only see standard `Response` objects.
 */
import type { FetchLike } from '../transport.js';

/** What the client sent. */
export interface RecordedRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
}

/** The server side of a streamed body. */
export class FakeServerStream {
  private isDone = false;
  /** Set when the client cancelled the body (it closed the transport). */
  isCancelled = false;

  constructor(private readonly controller: ReadableStreamDefaultController<Uint8Array>) {}

  /** Sends raw SSE text. */
  push(text: string): void {
    if (this.isDone) return;
    this.controller.enqueue(new TextEncoder().encode(text));
  }

  /** Ends the body cleanly (the server closed the stream). */
  end(): void {
    if (this.isDone) return;
    this.isDone = true;
    this.controller.close();
  }

  /** Breaks the body (the connection dropped). */
  fail(message = 'connection reset'): void {
    if (this.isDone) return;
    this.isDone = true;
    this.controller.error(new TypeError(message));
  }

  /** @internal */
  abort(reason: unknown): void {
    if (this.isDone) return;
    this.isDone = true;
    this.controller.error(reason);
  }
}

/** One request waiting for the test to answer it. */
export class PendingRequest {
  /** Set once the client aborted the request (closed the transport). */
  isAborted = false;
  private stream: FakeServerStream | undefined;
  private settled = false;

  constructor(
    readonly request: RecordedRequest,
    private readonly resolve: (response: Response) => void,
    private readonly reject: (error: unknown) => void,
  ) {}

  get url(): URL {
    return new URL(this.request.url);
  }

  /** Answers 200 `text/event-stream` and returns the stream to push frames into. */
  respondStream(headers: Record<string, string> = {}): FakeServerStream {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({
      start: (streamController) => {
        controller = streamController;
      },
      cancel: () => {
        if (this.stream) this.stream.isCancelled = true;
      },
    });
    this.stream = new FakeServerStream(controller);
    this.settle(
      new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream; charset=utf-8', ...headers } }),
    );
    return this.stream;
  }

  /** Answers with a JSON body (an API error, a poll answer, a ticket). */
  respondJson(status: number, body: unknown, headers: Record<string, string> = {}): void {
    this.settle(
      new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } }),
    );
  }

  /** Answers with an API error `{"error": {code, message}}`. */
  respondError(status: number, code: string, headers: Record<string, string> = {}): void {
    this.respondJson(status, { error: { code, message: code } }, headers);
  }

  /** Fails like a network error (`fetch` rejects). */
  fail(message = 'fetch failed'): void {
    if (this.settled) return;
    this.settled = true;
    this.reject(new TypeError(message));
  }

  /** @internal */
  abort(): void {
    this.isAborted = true;
    const reason = new DOMException('The operation was aborted.', 'AbortError');
    if (!this.settled) {
      this.settled = true;
      this.reject(reason);
    }
    this.stream?.abort(reason);
  }

  private settle(response: Response): void {
    if (this.settled) throw new Error('request already answered');
    this.settled = true;
    this.resolve(response);
  }
}

/** The scripted network: hand `network.fetch` to the client, then answer `network.requests`. */
export class FakeNetwork {
  readonly requests: PendingRequest[] = [];
  /** Called for every new request; answer it here to script a server. */
  onRequest: ((request: PendingRequest) => void) | undefined;

  readonly fetch: FetchLike = (input, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((value, name) => {
        headers[name] = value;
      });
      const pending = new PendingRequest({ url: input, method: init.method ?? 'GET', headers }, resolve, reject);
      this.requests.push(pending);
      const signal = init.signal;
      if (signal) {
        if (signal.aborted) pending.abort();
        else signal.addEventListener('abort', () => pending.abort(), { once: true });
      }
      this.onRequest?.(pending);
    });

  /** Requests whose path is `path`. */
  to(path: string): PendingRequest[] {
    return this.requests.filter((pending) => pending.url.pathname === path);
  }

  /** The latest request to `path`; throws if there is none. */
  last(path: string): PendingRequest {
    const pending = this.to(path).at(-1);
    if (!pending) throw new Error(`no request to ${path}; got ${this.requests.map((r) => r.url.pathname).join(', ')}`);
    return pending;
  }
}

/** SSE frame builders matching docs/http-api.md. */
export const frames = {
  retry: (ms: number) => `retry: ${ms}\n\n`,
  established: (connectionId = 'c1', topics = ['user:u1']) =>
    `event: connection.established\ndata: ${JSON.stringify({ connectionId, instanceId: 'i1', topics })}\n\n`,
  heartbeat: () => `event: heartbeat\ndata: ${JSON.stringify({ ts: new Date(0).toISOString() })}\n\n`,
  control: (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`,
  event: (id: string, type: string, payload: object, topic = 'user:u1') =>
    `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify({ topic, type, ts: new Date(0).toISOString(), payload })}\n\n`,
  notification: (id: string, title = `n${id}`) => frames.event(id, 'notification', { title, level: 'info' }),
};
