import { createParser, type EventSourceMessage } from 'eventsource-parser';
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
  fetch?: typeof fetch;
}

interface ChatCompletionChunk {
  choices?: { delta?: { content?: unknown } }[];
  usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } | null;
  error?: unknown;
}

/**
 * Streaming client of the OpenAI Chat Completions API as OpenAI, vLLM, Ollama, llama.cpp server
 * and LM Studio serve it: `POST {baseUrl}/chat/completions` with `stream: true`, read as SSE
 * (eventsource-parser). A stream that ends without `data: [DONE]` is a failure, not a short
 * answer: a proxy or the server cut it.
 */
export class OpenAICompatibleProvider implements AIProvider {
  readonly info: ProviderInfo;
  private readonly url: string;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: OpenAICompatibleProviderOptions) {
    this.info = { kind: 'openai-compatible', label: `OpenAI-compatible (${options.model})`, model: options.model };
    this.url = `${options.baseUrl.replace(/\/+$/, '')}/chat/completions`;
    this.fetch = options.fetch ?? fetch;
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
    let phaseTimer: NodeJS.Timeout | undefined;
    const arm = (ms: number, message: string) => {
      clearTimeout(phaseTimer);
      phaseTimer = setTimeout(() => abort(new ProviderError('timeout', message)), ms);
    };
    const failure = (error: unknown): ProviderError => {
      const reason: unknown = controller.signal.reason;
      if (controller.signal.aborted && reason instanceof ProviderError) return reason;
      if (error instanceof ProviderError) return error;
      return new ProviderError('http', `could not reach the provider at ${this.url}: ${describe(error)}`, {
        cause: error,
      });
    };

    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    try {
      arm(connectTimeoutMs, `the provider sent no response within ${connectTimeoutMs} ms`);
      const response = await this.fetch(this.url, {
        method: 'POST',
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
      });
      if (!response.ok) {
        const body = await readErrorBody(response);
        throw new ProviderError('http', `the provider answered HTTP ${response.status}${body ? `: ${body}` : ''}`, {
          status: response.status,
        });
      }
      if (!response.body) throw new ProviderError('protocol', 'the provider answered without a body');

      const messages: EventSourceMessage[] = [];
      let overflow = false;
      const parser = createParser({
        onEvent: (message) => messages.push(message),
        onError: (error) => {
          if (error.type === 'max-buffer-size-exceeded') overflow = true;
        },
        maxBufferSize: MAX_SSE_BUFFER_CHARS,
      });
      const decoder = new TextDecoder();
      reader = response.body.getReader();
      let sawEvent = false;
      for (;;) {
        arm(idleTimeoutMs, `the provider sent nothing for ${idleTimeoutMs} ms`);
        const { done, value } = await reader.read();
        clearTimeout(phaseTimer);
        if (done) {
          // A final `data: [DONE]` without its blank line still counts; a cut line fails to parse.
          parser.feed(`${decoder.decode()}\n\n`);
          if (messages.length === 0) {
            const contentType = response.headers.get('content-type') ?? 'none';
            throw new ProviderError(
              'protocol',
              sawEvent
                ? 'the provider stream ended without [DONE]'
                : `the provider stream ended without any event (content-type ${contentType}) and without [DONE]`,
            );
          }
        } else {
          parser.feed(decoder.decode(value, { stream: true }));
        }
        if (overflow)
          throw new ProviderError('protocol', `the provider sent an event over ${MAX_SSE_BUFFER_CHARS} characters`);
        for (const message of messages.splice(0)) {
          sawEvent = true;
          const data = message.data.trim();
          if (data === '[DONE]') return;
          for (const chunk of parseChunk(message)) yield chunk;
        }
      }
    } catch (error) {
      throw failure(error);
    } finally {
      clearTimeout(phaseTimer);
      clearTimeout(totalTimer);
      request.signal.removeEventListener('abort', onCallerAbort);
      // After [DONE], or when the consumer stopped early: free the connection.
      if (!controller.signal.aborted) controller.abort(new ProviderError('aborted', 'stream closed'));
      try {
        reader?.releaseLock();
      } catch {
        // Nothing to release.
      }
    }
  }
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

async function readErrorBody(response: Response): Promise<string> {
  try {
    return truncate((await response.text()).trim());
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
