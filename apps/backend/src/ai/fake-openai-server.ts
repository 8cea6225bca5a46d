import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * How the fake answers the next requests:
 * - `normal`: the reply in chunks, a `finish_reason` chunk, a usage chunk, `data: [DONE]`;
 * - `error-mid-stream`: a few chunks, then `data: {"error": {...}}`, then the end (as vLLM does);
 * - `http-500`: a JSON error body with status 500;
 * - `hang`: never answers (no headers);
 * - `stall`: headers and a few chunks, then nothing, connection open;
 * - `cut`: a few chunks, then the end of the body without `[DONE]`;
 * - `raw`: {@link FakeOpenAIServer.raw} as it is, in one write (any body a server might send).
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

/** One request the fake received. */
export interface FakeRequest {
  path: string;
  headers: IncomingHttpHeaders;
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

/** Options of {@link FakeOpenAIServer.start}; all can be changed later on the instance. */
export interface FakeOpenAIServerOptions {
  mode?: FakeMode;
  /** The completion text, split into word-sized chunks like a real model's tokens. */
  reply?: string;
  /** Pause before each content chunk. */
  chunkDelayMs?: number;
  /** Content chunks sent before `error-mid-stream`, `stall` or `cut` strikes. */
  chunksBeforeFailure?: number;
  raw?: RawResponse;
}

/** The default reply: multi-byte characters on purpose, so chunk splits can fall inside one. */
export const FAKE_REPLY =
  'Once upon a time, in a café by the harbour — where the gulls argued over crusts — a writer finished her novel. ✍️ The end.';

/**
 * A local OpenAI-compatible Chat Completions server for tests (node:http, port 0) that streams the
 * real wire format: `data: {chat.completion.chunk}` frames, a usage frame, `data: [DONE]`. Every
 * frame is written in two pieces split mid-frame, so clients must reassemble partial lines and
 * partial UTF-8 sequences. It records requests and whether the client aborted.
 */
export class FakeOpenAIServer {
  mode: FakeMode;
  reply: string;
  chunkDelayMs: number;
  chunksBeforeFailure: number;
  raw: RawResponse;
  readonly requests: FakeRequest[] = [];
  /** The base URL to configure as AI_BASE_URL (ends with `/v1`); still known after close. */
  baseUrl = '';
  private readonly open = new Set<ServerResponse>();

  private constructor(
    private readonly server: Server,
    options: FakeOpenAIServerOptions,
  ) {
    this.mode = options.mode ?? 'normal';
    this.reply = options.reply ?? FAKE_REPLY;
    this.chunkDelayMs = options.chunkDelayMs ?? 1;
    this.chunksBeforeFailure = options.chunksBeforeFailure ?? 3;
    this.raw = options.raw ?? { body: '' };
  }

  /** Starts listening on 127.0.0.1 and a free port. */
  static async start(options: FakeOpenAIServerOptions = {}): Promise<FakeOpenAIServer> {
    const server = createServer();
    const fake = new FakeOpenAIServer(server, options);
    server.on('request', (request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          body = undefined;
        }
        void fake.answer(request, body, response);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    fake.baseUrl = `http://127.0.0.1:${port}/v1`;
    return fake;
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
    const path = request.url ?? '/';
    let markClosed = () => {};
    const record: FakeRequest = {
      path,
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
    if (!path.endsWith('/chat/completions')) {
      response.writeHead(404, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: { message: `no route ${path}`, type: 'invalid_request_error' } }));
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
      response.end(JSON.stringify({ error: { message: 'internal failure in the fake model', type: 'server_error' } }));
      return;
    }
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const id = `chatcmpl-fake-${this.requests.length}`;
    const model = typeof (body as { model?: unknown })?.model === 'string' ? (body as { model: string }).model : 'x';
    const frame = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: 1_700_000_000, model, choices, ...extra })}\n\n`;
    const write = (text: string) => {
      if (response.destroyed) return;
      // Two writes per frame, split mid-frame (possibly mid-character): clients must reassemble.
      const bytes = Buffer.from(text, 'utf8');
      const middle = Math.floor(bytes.length / 2);
      response.write(bytes.subarray(0, middle));
      response.write(bytes.subarray(middle));
    };

    write(frame([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]));
    const chunks = this.replyChunks;
    const failsAfter = mode === 'normal' ? Number.POSITIVE_INFINITY : this.chunksBeforeFailure;
    for (const [index, chunk] of chunks.entries()) {
      if (index >= failsAfter) break;
      await delay(this.chunkDelayMs);
      if (response.destroyed) return;
      write(frame([{ index: 0, delta: { content: chunk }, finish_reason: null }]));
      record.chunksSent++;
    }
    if (mode === 'stall') return;
    if (mode === 'cut') {
      response.end();
      return;
    }
    if (mode === 'error-mid-stream') {
      write(
        `data: ${JSON.stringify({ error: { message: 'The model is overloaded', type: 'server_error', code: 503 } })}\n\n`,
      );
      response.end();
      return;
    }
    write(frame([{ index: 0, delta: {}, finish_reason: 'stop' }]));
    const options = (body as { stream_options?: { include_usage?: unknown } })?.stream_options;
    if (options?.include_usage === true) {
      const promptTokens = 7;
      write(
        frame([], {
          usage: {
            prompt_tokens: promptTokens,
            completion_tokens: chunks.length,
            total_tokens: promptTokens + chunks.length,
          },
        }),
      );
    }
    write('data: [DONE]\n\n');
    response.end();
  }
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
