import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * How a fake model server answers the next requests:
 * - `normal`: the reply in chunks, then the service's end of stream (finish reason, usage, end marker);
 * - `error-mid-stream`: a few chunks, then the service's error event, then the end;
 * - `http-500`: the service's JSON error body with status 500;
 * - `hang`: never answers (no headers);
 * - `stall`: headers and a few chunks, then nothing, connection open;
 * - `cut`: a few chunks, then the end of the body without the service's end of stream;
 * - `raw`: {@link FakeModelServer.raw} as it is, in one write (any body a server might send).
 * `chunkDelayMs` spaces the chunks (slow chunks) in every mode that sends some.
 */
export type FakeMode = 'normal' | 'error-mid-stream' | 'http-500' | 'hang' | 'stall' | 'cut' | 'raw';

/** The response of mode `raw`. */
export interface RawResponse {
  /** Default 200. */
  status?: number;
  /** Default `text/event-stream`. */
  contentType?: string;
  body: string;
}

/** One request a fake received. */
export interface FakeRequest {
  /** Path and query, e.g. `/v1/chat/completions`. */
  path: string;
  headers: IncomingHttpHeaders;
  /** The JSON body (undefined when it was not JSON). */
  body: unknown;
  /** The client went away before the response ended (an abort, a timeout). */
  aborted: boolean;
  /** The client's port: equal for two requests sent on one kept-alive connection. */
  remotePort: number | undefined;
  /** Content chunks written so far. */
  chunksSent: number;
  /** Resolves when the connection of this request is closed, whoever closed it. */
  closed: Promise<void>;
}

/** An answer other than a stream: what the real service says to a request it refuses. */
export interface FakeRefusal {
  status: number;
  body: unknown;
}

/** Token counts a fake reports at the end of a stream. */
export interface FakeUsage {
  inputTokens: number;
  outputTokens: number;
}

/** The frames of one streamed reply, in a service's wire format. */
export interface FakeReplyFrames {
  /** Before the first content chunk. */
  start(): string[];
  /** One content chunk. */
  delta(text: string): string;
  /** After the last content chunk, in mode `normal`. */
  finish(usage: FakeUsage): string[];
  /** The service's error event, in mode `error-mid-stream`. */
  error(): string[];
}

/** A service's wire format, as a fake speaks it. */
export interface WireFormat {
  /** Appended to `http://127.0.0.1:<port>` to make the base URL a client is configured with. */
  basePath: string;
  /**
   * Judges a request as the real service does: a refusal (unknown path, missing or wrong key,
   * a parameter the model does not accept), or undefined to stream the reply. `apiKey` is the key
   * the fake expects, when it expects one.
   */
  judge(request: FakeRequest, apiKey: string | undefined): FakeRefusal | undefined;
  /** The frames of the reply to `request`. */
  frames(request: FakeRequest): FakeReplyFrames;
  /** The body of mode `http-500`. */
  serverError(): unknown;
}

/** Options of a fake; all can be changed later on the instance. */
export interface FakeModelServerOptions {
  mode?: FakeMode;
  /** The completion text, split into word-sized chunks like a real model's tokens. */
  reply?: string;
  /** Pause before each content chunk. */
  chunkDelayMs?: number;
  /** Content chunks sent before `error-mid-stream`, `stall` or `cut` strikes. */
  chunksBeforeFailure?: number;
  raw?: RawResponse;
  /** The key requests must carry (where the service wants it); any or none when unset. */
  apiKey?: string;
}

/** The default reply: multi-byte characters on purpose, so chunk splits can fall inside one. */
export const FAKE_REPLY =
  'Once upon a time, in a café by the harbour — where the gulls argued over crusts — a writer finished her novel. ✍️ The end.';

/** Input tokens every fake reports. */
export const FAKE_INPUT_TOKENS = 7;

/**
 * A local model server for tests (node:http, 127.0.0.1, port 0) that streams a service's real wire
 * format (see {@link WireFormat}). Every frame is written in two pieces split mid-frame, so
 * clients must reassemble partial lines and partial UTF-8 sequences. It records requests and
 * whether the client went away before the end (an abort closes the connection).
 */
export class FakeModelServer {
  mode: FakeMode;
  reply: string;
  chunkDelayMs: number;
  chunksBeforeFailure: number;
  raw: RawResponse;
  apiKey: string | undefined;
  readonly requests: FakeRequest[] = [];
  /** The base URL to configure the client with; still known after close. */
  baseUrl = '';
  /** `http://127.0.0.1:<port>`. */
  origin = '';
  private readonly server: Server = createServer();
  private readonly open = new Set<ServerResponse>();

  protected constructor(
    private readonly wire: WireFormat,
    options: FakeModelServerOptions,
  ) {
    this.mode = options.mode ?? 'normal';
    this.reply = options.reply ?? FAKE_REPLY;
    this.chunkDelayMs = options.chunkDelayMs ?? 1;
    this.chunksBeforeFailure = options.chunksBeforeFailure ?? 3;
    this.raw = options.raw ?? { body: '' };
    this.apiKey = options.apiKey;
  }

  /** Starts listening on 127.0.0.1 and a free port. */
  protected async listen(): Promise<this> {
    this.server.on('request', (request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          body = undefined;
        }
        void this.answer(request, body, response);
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    this.origin = `http://127.0.0.1:${port}`;
    this.baseUrl = `${this.origin}${this.wire.basePath}`;
    return this;
  }

  /** The text the client should have received: the reply's chunks, in order. */
  get replyChunks(): string[] {
    return this.reply.split(/(?=\s)/).filter((chunk) => chunk.length > 0);
  }

  /** Resolves once `count` requests have arrived. */
  async waitForRequests(count: number, timeoutMs = 10_000): Promise<FakeRequest[]> {
    await waitUntil(() => this.requests.length >= count, timeoutMs, `${count} request(s)`);
    return this.requests;
  }

  /** Ends every open response and stops listening. */
  async close(): Promise<void> {
    for (const response of this.open) response.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async answer(request: IncomingMessage, body: unknown, response: ServerResponse) {
    let markClosed = () => {};
    const record: FakeRequest = {
      path: request.url ?? '/',
      headers: request.headers,
      body,
      aborted: false,
      remotePort: request.socket.remotePort,
      chunksSent: 0,
      closed: new Promise<void>((resolve) => (markClosed = resolve)),
    };
    this.requests.push(record);
    this.open.add(response);
    response.on('close', () => {
      this.open.delete(response);
      if (!response.writableEnded) record.aborted = true;
      markClosed();
    });
    const refusal = this.wire.judge(record, this.apiKey);
    if (refusal) {
      response.writeHead(refusal.status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(refusal.body));
      return;
    }
    const mode = this.mode;
    if (mode === 'hang') return;
    if (mode === 'raw') {
      const { status = 200, contentType = 'text/event-stream', body: rawBody } = this.raw;
      response.writeHead(status, { 'content-type': contentType });
      response.end(rawBody);
      return;
    }
    if (mode === 'http-500') {
      response.writeHead(500, { 'content-type': 'application/json' });
      response.end(JSON.stringify(this.wire.serverError()));
      return;
    }
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const write = (text: string) => {
      if (response.destroyed) return;
      // Two writes per frame, split mid-frame (possibly mid-character): clients must reassemble.
      const bytes = Buffer.from(text, 'utf8');
      const middle = Math.floor(bytes.length / 2);
      response.write(bytes.subarray(0, middle));
      response.write(bytes.subarray(middle));
    };

    const frames = this.wire.frames(record);
    for (const frame of frames.start()) write(frame);
    const chunks = this.replyChunks;
    const failsAfter = mode === 'normal' ? Number.POSITIVE_INFINITY : this.chunksBeforeFailure;
    for (const [index, chunk] of chunks.entries()) {
      if (index >= failsAfter) break;
      await delay(this.chunkDelayMs);
      if (response.destroyed) return;
      write(frames.delta(chunk));
      record.chunksSent++;
    }
    if (mode === 'stall') return;
    if (mode === 'error-mid-stream') for (const frame of frames.error()) write(frame);
    if (mode === 'normal') {
      for (const frame of frames.finish({ inputTokens: FAKE_INPUT_TOKENS, outputTokens: chunks.length })) write(frame);
    }
    response.end();
  }
}

/** `event: <type>` and `data: <json>`: the SSE frame of services that name their events. */
export function namedEvent(type: string, data: unknown): string {
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** The header's value (the first, when repeated). */
export function header(request: FakeRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** A field of the request's JSON body. */
export function bodyField(request: FakeRequest, name: string): unknown {
  const body = request.body;
  return typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` every 5 ms; rejects after `timeoutMs`. */
export async function waitUntil(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(5);
  }
}
