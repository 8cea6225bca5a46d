import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { Agent, errors as undiciErrors, request as httpRequest, type Dispatcher } from 'undici';
import {
  ProviderError,
  type AIProvider,
  type CompletionChunk,
  type CompletionRequest,
  type CompletionUsage,
  type ProviderInfo,
} from './ai-provider.js';

/** Longest part of an error body quoted in a {@link ProviderError}. */
export const MAX_ERROR_BODY_CHARS = 500;
/** Longest SSE event accepted from a provider. */
const MAX_SSE_BUFFER_CHARS = 1_048_576;
/** Parsed chunks the consumer has not taken yet before the socket is paused (backpressure). */
const MAX_QUEUED_CHUNKS = 1_024;
/** How long a finished response may take to end before its connection is given up rather than reused. */
const DRAIN_AFTER_DONE_MS = 1_000;

/** Options of {@link OpenAICompatibleProvider}. */
export interface OpenAICompatibleProviderOptions {
  /** e.g. `https://api.openai.com/v1`, `http://localhost:11434/v1` (Ollama), `http://localhost:8000/v1` (vLLM). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer`; local servers usually need none. */
  apiKey?: string;
  model: string;
  /** Until the response headers arrive. */
  connectTimeoutMs: number;
  /** Between two reads of the body (a stalled stream). */
  idleTimeoutMs: number;
  /** The whole request, headers to `[DONE]`. */
  totalTimeoutMs: number;
}

interface ChatCompletionChunk {
  choices?: { delta?: { content?: unknown } }[];
  usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } | null;
  error?: unknown;
}

type ResponseBody = Dispatcher.ResponseData['body'];

/**
 * Streaming client of the OpenAI Chat Completions API as OpenAI, vLLM, Ollama, llama.cpp server
 * and LM Studio serve it: `POST {baseUrl}/chat/completions` with `stream: true`, read as SSE
 * (eventsource-parser). A stream that ends without `data: [DONE]` is a failure, not a short
 * answer: a proxy or the server cut it.
 *
 * It speaks HTTP through undici's `request` on its own keep-alive pool rather than `fetch`: the
 * body is a Node stream read with `data` events, which costs half the CPU per token of WHATWG
 * streams, and at thousands of tokens a second that CPU is what delays everyone's first token.
 */
export class OpenAICompatibleProvider implements AIProvider {
  readonly info: ProviderInfo;
  private readonly url: string;
  private readonly agent: Agent;

  constructor(private readonly options: OpenAICompatibleProviderOptions) {
    this.info = { kind: 'openai-compatible', label: `OpenAI-compatible (${options.model})`, model: options.model };
    this.url = `${options.baseUrl.replace(/\/+$/, '')}/chat/completions`;
    this.agent = new Agent({ connect: { timeout: options.connectTimeoutMs } });
  }

  /** Closes the pooled connections (streams still open are cut). */
  async close(): Promise<void> {
    await this.agent.destroy();
  }

  async *stream(request: CompletionRequest): AsyncGenerator<CompletionChunk, void, undefined> {
    const { connectTimeoutMs, idleTimeoutMs, totalTimeoutMs } = this.options;
    const controller = new AbortController();
    const abort = (error: ProviderError) => {
      if (!controller.signal.aborted) controller.abort(error);
    };
    const onCallerAbort = () => abort(new ProviderError('aborted', 'the generation was aborted'));
    if (request.signal.aborted) onCallerAbort();
    request.signal.addEventListener('abort', onCallerAbort, { once: true });
    const totalTimer = setTimeout(
      () => abort(new ProviderError('timeout', `the provider did not finish within ${totalTimeoutMs} ms`)),
      totalTimeoutMs,
    );
    const connectTimeout = () =>
      new ProviderError('timeout', `the provider sent no response within ${connectTimeoutMs} ms`);
    // Our own timers, not undici's headers and body timeouts: those tick at one-second resolution.
    let phaseTimer = setTimeout(() => abort(connectTimeout()), connectTimeoutMs);
    const failure = (error: unknown): ProviderError => {
      const reason: unknown = controller.signal.reason;
      if (controller.signal.aborted && reason instanceof ProviderError) return reason;
      if (error instanceof ProviderError) return error;
      if (error instanceof undiciErrors.ConnectTimeoutError) return connectTimeout();
      return new ProviderError('http', `could not reach the provider at ${this.url}: ${describe(error)}`, {
        cause: error,
      });
    };

    let body: ResponseBody | undefined;
    let sawDone = false;
    try {
      const response = await httpRequest(this.url, {
        method: 'POST',
        dispatcher: this.agent,
        headers: {
          'content-type': 'application/json',
          accept: 'text/event-stream',
          ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}),
        },
        body: JSON.stringify({
          model: this.options.model,
          messages: messagesFor(request),
          stream: true,
          max_tokens: request.maxTokens,
          stream_options: { include_usage: true },
        }),
        signal: controller.signal,
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      clearTimeout(phaseTimer);
      body = response.body;
      if (response.statusCode < 200 || response.statusCode > 299) {
        const text = await readErrorBody(body);
        throw new ProviderError('http', `the provider answered HTTP ${response.statusCode}${text ? `: ${text}` : ''}`, {
          status: response.statusCode,
        });
      }
      const contentType = headerValue(response.headers['content-type']) ?? 'none';
      const events = new CompletionEvents(body, contentType, controller.signal);
      // One timer for the whole body, not one per read: it checks when data last came and
      // re-arms for the rest of the window.
      const checkIdle = () => {
        const quietFor = Date.now() - events.lastDataAt;
        if (quietFor >= idleTimeoutMs)
          abort(new ProviderError('timeout', `the provider sent nothing for ${idleTimeoutMs} ms`));
        else phaseTimer = setTimeout(checkIdle, idleTimeoutMs - quietFor);
      };
      phaseTimer = setTimeout(checkIdle, idleTimeoutMs);
      for (;;) {
        // An abort stops at once, even with parsed chunks still queued.
        if (controller.signal.aborted) throw controller.signal.reason;
        const next = events.take();
        if (next === 'done') {
          sawDone = true;
          return;
        }
        if (next === 'wait') await events.readable();
        else yield next;
      }
    } catch (error) {
      throw failure(error);
    } finally {
      clearTimeout(phaseTimer);
      clearTimeout(totalTimer);
      request.signal.removeEventListener('abort', onCallerAbort);
      if (body && !body.readableEnded) {
        // After [DONE] the rest of the response is read so the connection can serve the next
        // request; when the consumer stopped early or it failed, the connection is closed.
        if (sawDone)
          void body
            .dump({ limit: MAX_SSE_BUFFER_CHARS, signal: AbortSignal.timeout(DRAIN_AFTER_DONE_MS) })
            .catch(() => undefined);
        else body.destroy();
      }
    }
  }
}

/**
 * The completion chunks of a response body as it arrives: `data` events are parsed as they come
 * (eventsource-parser, then JSON) into a queue the generator takes from, so one network read that
 * carries several tokens costs one wake-up. A failure (a malformed or error chunk, a cut stream,
 * a socket error) is reported after the chunks before it.
 */
class CompletionEvents {
  private readonly queue: CompletionChunk[] = [];
  private head = 0;
  private done = false;
  private ended = false;
  private sawEvent = false;
  private overflow = false;
  private error: unknown;
  private wake: (() => void) | undefined;
  /** `Date.now()` of the last read (or of the headers). */
  lastDataAt = Date.now();
  private readonly parser = createParser({
    onEvent: (message) => this.onEvent(message),
    onError: (error) => {
      if (error.type === 'max-buffer-size-exceeded') this.overflow = true;
    },
    maxBufferSize: MAX_SSE_BUFFER_CHARS,
  });

  constructor(
    private readonly body: ResponseBody,
    private readonly contentType: string,
    signal: AbortSignal,
  ) {
    // The waiting generator must wake up to an abort even if the body never reports it.
    signal.addEventListener('abort', () => this.notify(), { once: true });
    // undici's body ignores setEncoding: decode here (characters may be split across reads).
    const decoder = new TextDecoder();
    body.on('data', (bytes: Buffer) => {
      this.lastDataAt = Date.now();
      this.feed(decoder.decode(bytes, { stream: true }));
    });
    body.on('end', () => {
      // A final `data: [DONE]` without its blank line still counts; a cut line fails to parse.
      this.feed(`${decoder.decode()}\n\n`);
      this.ended = true;
      this.notify();
    });
    body.on('error', (error) => this.fail(error));
  }

  /** The next chunk; `done` after `[DONE]`; `wait` when nothing is parsed yet. @throws the stream's failure. */
  take(): CompletionChunk | 'done' | 'wait' {
    if (this.head < this.queue.length) {
      const chunk = this.queue[this.head] as CompletionChunk;
      this.head++;
      if (this.head === this.queue.length) {
        this.queue.length = 0;
        this.head = 0;
        if (this.body.isPaused()) this.body.resume();
      }
      return chunk;
    }
    if (this.done) return 'done';
    if (this.error !== undefined) throw this.error;
    if (this.ended) {
      throw new ProviderError(
        'protocol',
        this.sawEvent
          ? 'the provider stream ended without [DONE]'
          : `the provider stream ended without any event (content-type ${this.contentType}) and without [DONE]`,
      );
    }
    return 'wait';
  }

  /** Resolves when {@link take} has something new to say. */
  readable(): Promise<void> {
    return new Promise((resolve) => (this.wake = resolve));
  }

  private feed(text: string): void {
    if (this.done || this.error !== undefined) return;
    try {
      this.parser.feed(text);
      if (this.overflow) {
        throw new ProviderError('protocol', `the provider sent an event over ${MAX_SSE_BUFFER_CHARS} characters`);
      }
    } catch (error) {
      this.fail(error);
      return;
    }
    if (this.queue.length - this.head >= MAX_QUEUED_CHUNKS) this.body.pause();
    this.notify();
  }

  private onEvent(message: EventSourceMessage): void {
    if (this.done) return;
    this.sawEvent = true;
    if (message.data.trim() === '[DONE]') {
      this.done = true;
      return;
    }
    for (const chunk of parseChunk(message)) this.queue.push(chunk);
  }

  private fail(error: unknown): void {
    this.error ??= error;
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The chunks one SSE message carries; `{"error": ...}` and malformed JSON throw. */
function parseChunk(message: EventSourceMessage): CompletionChunk[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(message.data);
  } catch {
    throw new ProviderError('protocol', `the provider sent malformed JSON: ${truncate(message.data)}`);
  }
  if (typeof parsed !== 'object' || parsed === null) {
    throw new ProviderError('protocol', `the provider sent an unexpected chunk: ${truncate(message.data)}`);
  }
  const chunk = parsed as ChatCompletionChunk;
  if (chunk.error !== undefined && chunk.error !== null) {
    throw new ProviderError('provider', `the provider reported an error: ${errorMessage(chunk.error)}`);
  }
  if (message.event === 'error') {
    throw new ProviderError('provider', `the provider reported an error: ${truncate(message.data)}`);
  }
  const chunks: CompletionChunk[] = [];
  const content = chunk.choices?.[0]?.delta?.content;
  if (typeof content === 'string' && content !== '') chunks.push({ type: 'delta', text: content });
  if (chunk.usage) {
    const usage: CompletionUsage = {};
    if (isCount(chunk.usage.prompt_tokens)) usage.promptTokens = chunk.usage.prompt_tokens;
    if (isCount(chunk.usage.completion_tokens)) usage.completionTokens = chunk.usage.completion_tokens;
    chunks.push({ type: 'usage', usage });
  }
  return chunks;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

/** `{"message": "..."}` (OpenAI, vLLM), a bare string (Ollama), or the JSON itself. */
function errorMessage(error: unknown): string {
  if (typeof error === 'string') return truncate(error);
  if (typeof error === 'object' && error !== null && typeof (error as { message?: unknown }).message === 'string') {
    return truncate((error as { message: string }).message);
  }
  return truncate(JSON.stringify(error) ?? String(error));
}

async function readErrorBody(body: ResponseBody): Promise<string> {
  try {
    return truncate((await body.text()).trim());
  } catch {
    return '';
  }
}

function truncate(text: string): string {
  return text.length > MAX_ERROR_BODY_CHARS ? `${text.slice(0, MAX_ERROR_BODY_CHARS)}…` : text;
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return `${error.message}${cause}`;
  }
  return String(error);
}

/** Asks the model to continue its own reply after a restart, without repeating it. */
export const CONTINUE_INSTRUCTION =
  'Continue your previous reply exactly where it stops, without repeating any of it and without any preamble.';

/**
 * The chat for a request: the prompt, and for a continuation the text so far as the assistant's
 * reply plus {@link CONTINUE_INSTRUCTION} (servers differ on continuing a trailing assistant
 * message; an explicit instruction works with all of them).
 */
function messagesFor(request: CompletionRequest): { role: 'user' | 'assistant'; content: string }[] {
  const prompt = { role: 'user' as const, content: request.prompt };
  if (!request.continuation) return [prompt];
  return [
    prompt,
    { role: 'assistant', content: request.continuation },
    { role: 'user', content: CONTINUE_INSTRUCTION },
  ];
}
