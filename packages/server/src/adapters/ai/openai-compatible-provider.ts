import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { Agent, errors as undiciErrors, request as httpRequest, type Dispatcher } from 'undici';
import {
  ProviderError,
  chatOf,
  providerMessage,
  truncateProviderText as truncate,
  type AIProvider,
  type CompletionChunk,
  type CompletionRequest,
  type CompletionUsage,
  type ProviderInfo,
} from './ai-provider.js';
import { RequestDeadlines, type ProviderTimeouts } from './request-deadlines.js';

/** Longest SSE event accepted from a provider. */
const MAX_SSE_BUFFER_CHARS = 1_048_576;
/** Parsed chunks the consumer has not taken yet before the socket is paused (backpressure). */
const MAX_QUEUED_CHUNKS = 1_024;
/** How long a finished response may take to end before its connection is given up rather than reused. */
const DRAIN_AFTER_DONE_MS = 1_000;

/**
 * The request field that bounds the reply: OpenAI's current models (the o-series, GPT-5 and later)
 * refuse `max_tokens` and want `max_completion_tokens`; most other servers (vLLM, Ollama,
 * llama.cpp, LM Studio) know only `max_tokens`.
 */
export type MaxTokensParam = 'max_tokens' | 'max_completion_tokens';

/**
 * Azure OpenAI: the key goes in an `api-key` header, and with a dated `apiVersion` the model is
 * the deployment in the path (`{endpoint}/openai/deployments/{model}/chat/completions?api-version=`);
 * with `v1`, the v1 API (`{endpoint}/openai/v1/chat/completions`, the deployment as `model`).
 */
export interface AzureOptions {
  apiVersion: string;
}

/** Options of {@link OpenAICompatibleProvider}. */
export interface OpenAICompatibleProviderOptions extends ProviderTimeouts {
  /**
   * e.g. `https://api.openai.com/v1`, `http://localhost:11434/v1` (Ollama), `http://localhost:8000/v1`
   * (vLLM); with `azure`, the resource endpoint `https://<resource>.openai.azure.com`.
   */
  baseUrl: string;
  /** Sent as `Authorization: Bearer` (`api-key` for Azure); local servers usually need none. */
  apiKey?: string;
  model: string;
  /** Default `max_tokens`. */
  maxTokensParam?: MaxTokensParam;
  azure?: AzureOptions;
}

interface ChatCompletionChunk {
  choices?: { delta?: { content?: unknown } }[];
  usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } | null;
  error?: unknown;
}

type ResponseBody = Dispatcher.ResponseData['body'];

/**
 * Streaming client of the OpenAI Chat Completions API as OpenAI, Azure OpenAI, vLLM, Ollama,
 * llama.cpp server and LM Studio serve it: `POST …/chat/completions` with `stream: true` and
 * `stream_options.include_usage`, read as SSE (eventsource-parser). A stream that ends without
 * `data: [DONE]` is a failure, not a short answer: a proxy or the server cut it.
 *
 * It speaks HTTP through undici's `request` on its own keep-alive pool rather than `fetch`: the
 * body is a Node stream read with `data` events, which costs half the CPU per token of WHATWG
 * streams, and at thousands of tokens a second that CPU is what delays everyone's first token.
 */
export class OpenAICompatibleProvider implements AIProvider {
  readonly info: ProviderInfo;
  private readonly baseUrl: string;
  private readonly agent: Agent;
  private readonly headers: Record<string, string>;
  private readonly maxTokensParam: MaxTokensParam;

  constructor(private readonly options: OpenAICompatibleProviderOptions) {
    const { model, azure, apiKey } = options;
    this.info = azure
      ? { kind: 'azure-openai', label: `Azure OpenAI (${model})`, model }
      : { kind: 'openai-compatible', label: `OpenAI-compatible (${model})`, model };
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.agent = new Agent({ connect: { timeout: options.connectTimeoutMs } });
    const key: Record<string, string> = !apiKey
      ? {}
      : azure
        ? { 'api-key': apiKey }
        : { authorization: `Bearer ${apiKey}` };
    this.headers = { 'content-type': 'application/json', accept: 'text/event-stream', ...key };
    this.maxTokensParam = options.maxTokensParam ?? 'max_tokens';
  }

  /** Closes the pooled connections (streams still open are cut). */
  async close(): Promise<void> {
    await this.agent.destroy();
  }

  async *stream(request: CompletionRequest): AsyncGenerator<CompletionChunk, void, undefined> {
    const model = request.model ?? this.options.model;
    const url = this.urlFor(model);
    const deadlines = new RequestDeadlines(request.signal, this.options);
    const failure = (error: unknown): ProviderError => {
      const reason = deadlines.reason;
      if (reason) return reason;
      if (error instanceof ProviderError) return error;
      if (error instanceof undiciErrors.ConnectTimeoutError) return deadlines.connectTimeout();
      return new ProviderError('http', `could not reach the provider at ${url}: ${providerMessage(error)}`, {
        cause: error,
      });
    };

    let body: ResponseBody | undefined;
    let sawDone = false;
    try {
      const response = await httpRequest(url, {
        method: 'POST',
        dispatcher: this.agent,
        headers: this.headers,
        body: JSON.stringify({
          model,
          messages: chatOf(request),
          stream: true,
          [this.maxTokensParam]: request.maxTokens,
          ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
          stream_options: { include_usage: true },
        }),
        signal: deadlines.signal,
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      body = response.body;
      if (response.statusCode < 200 || response.statusCode > 299) {
        const text = await readErrorBody(body);
        throw new ProviderError('http', `the provider answered HTTP ${response.statusCode}${text ? `: ${text}` : ''}`, {
          status: response.statusCode,
        });
      }
      const contentType = headerValue(response.headers['content-type']) ?? 'none';
      const events = new CompletionEvents(body, contentType, deadlines.signal);
      deadlines.responded(() => events.lastDataAt);
      for (;;) {
        // An abort stops at once, even with parsed chunks still queued.
        if (deadlines.signal.aborted) throw deadlines.signal.reason;
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
      deadlines.dispose();
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

  /** Where a completion by `model` is asked for. */
  private urlFor(model: string): string {
    const { azure } = this.options;
    if (!azure) return `${this.baseUrl}/chat/completions`;
    if (azure.apiVersion === 'v1') return `${this.baseUrl}/openai/v1/chat/completions`;
    const version = encodeURIComponent(azure.apiVersion);
    return `${this.baseUrl}/openai/deployments/${encodeURIComponent(model)}/chat/completions?api-version=${version}`;
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
    throw new ProviderError('provider', `the provider reported an error: ${providerMessage(chunk.error)}`);
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

async function readErrorBody(body: ResponseBody): Promise<string> {
  try {
    return truncate((await body.text()).trim());
  } catch {
    return '';
  }
}
