import type { GenerationMessage } from '@infinitescribe/protocol';
import { UserSafeError } from '../../core/errors.js';

/**
 * The provider port: one streaming text completion. Adapters: the direct OpenAI-compatible Chat
 * Completions client (also Azure OpenAI), the AI SDK adapter (OpenAI Responses, Anthropic, Google,
 * any AI SDK provider) and the built-in offline demo provider.
 */

/** One turn of the conversation a completion answers. */
export type ChatMessage = GenerationMessage;

/** What a generation asks a provider for. */
export interface CompletionRequest {
  /** The conversation, oldest first; it holds at least one `user` message. */
  messages: readonly ChatMessage[];
  /** System prompt, sent before the messages. */
  system?: string;
  temperature?: number;
  /** Another of the operator's allowed models than the provider's own (`info.model`). */
  model?: string;
  /** Upper bound on generated tokens. */
  maxTokens: number;
  /** Aborting it stops the completion promptly and makes the stream throw a {@link ProviderError} `aborted`. */
  signal: AbortSignal;
  /**
   * Text already generated for this prompt (by an instance that stopped mid-generation): the
   * completion continues after it, without repeating it. `maxTokens` is what is left.
   */
  continuation?: string;
}

/** Token counts as the provider reports them (either may be missing). */
export interface CompletionUsage {
  promptTokens?: number;
  completionTokens?: number;
}

/** One item of a completion stream: new text, or the usage (at most once, usually last). */
export type CompletionChunk = { type: 'delta'; text: string } | { type: 'usage'; usage: CompletionUsage };

/** Why a provider stream failed. */
export type ProviderErrorKind = 'http' | 'timeout' | 'protocol' | 'aborted' | 'provider';

/** The only error a provider stream throws; `message` is safe to show to the user. */
export class ProviderError extends UserSafeError {
  readonly kind: ProviderErrorKind;
  /** HTTP status, for `http`. */
  readonly status: number | undefined;

  constructor(kind: ProviderErrorKind, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'ProviderError';
    this.kind = kind;
    this.status = options.status;
  }
}

import type { ProviderKind } from '../../core/provider-kinds.js';

export { PROVIDER_KINDS, type ProviderKind } from '../../core/provider-kinds.js';

/** How a provider presents itself (GET /api/ai/provider, logs, the UI's label). */
export interface ProviderInfo {
  /** One of ours, or `custom` for a provider the host passed in. */
  kind: ProviderKind | 'custom';
  /** Human label, e.g. "Offline demo provider (no AI model)". */
  label: string;
  model: string;
}

/** A streaming completion source. */
export interface AIProvider {
  readonly info: ProviderInfo;
  /**
   * Streams the reply to `request.messages`. Ends normally only when the provider said the
   * completion is complete; every failure, including an abort, is a {@link ProviderError}.
   */
  stream(request: CompletionRequest): AsyncIterable<CompletionChunk>;
  /** Frees what the provider holds (pooled connections); called once, after every stream ended. */
  close?(): Promise<void>;
}

/**
 * A provider as a host may pass it to the plugin (`aiProvider`): `stream(request, signal)`, with
 * `info` optional. Every {@link AIProvider} is one.
 */
export interface HostAIProvider {
  readonly info?: Partial<ProviderInfo>;
  stream(request: CompletionRequest, signal: AbortSignal): AsyncIterable<CompletionChunk>;
  close?(): Promise<void>;
}

/** A host's provider as the port the services use: `info` filled in, the signal passed both ways. */
export function fromHostProvider(provider: HostAIProvider): AIProvider {
  const model = provider.info?.model ?? 'custom';
  return {
    info: { kind: provider.info?.kind ?? 'custom', label: provider.info?.label ?? `Custom provider (${model})`, model },
    stream: (request) => provider.stream(request, request.signal),
    ...(provider.close ? { close: () => provider.close?.() ?? Promise.resolve() } : {}),
  };
}

/** Longest text of a provider's (an error body, a malformed chunk) quoted in a {@link ProviderError}. */
export const MAX_ERROR_BODY_CHARS = 500;

/** `text`, cut to {@link MAX_ERROR_BODY_CHARS}. */
export function truncateProviderText(text: string): string {
  return text.length > MAX_ERROR_BODY_CHARS ? `${text.slice(0, MAX_ERROR_BODY_CHARS)}…` : text;
}

/**
 * What a provider's error says, for a {@link ProviderError}: a bare string (Ollama), `{"message"}`
 * (OpenAI, vLLM, Anthropic's `error`), `{"error": {...}}`, an Error (with its cause), or the JSON.
 */
export function providerMessage(error: unknown): string {
  if (typeof error === 'string') return truncateProviderText(error);
  if (error instanceof Error) {
    const { cause } = error;
    const more = cause instanceof Error && cause.message !== error.message ? `: ${cause.message}` : '';
    return truncateProviderText(`${error.message}${more}`);
  }
  if (typeof error === 'object' && error !== null) {
    const { message, error: inner } = error as { message?: unknown; error?: unknown };
    if (typeof message === 'string') return truncateProviderText(message);
    if (inner !== undefined && inner !== null) return providerMessage(inner);
  }
  return truncateProviderText(JSON.stringify(error) ?? String(error));
}

/** Wraps anything thrown into a {@link ProviderError} (an abort of `signal` becomes `aborted`). */
export function toProviderError(error: unknown, signal?: AbortSignal): ProviderError {
  if (error instanceof ProviderError) return error;
  if (signal?.aborted) return new ProviderError('aborted', 'the generation was aborted', { cause: error });
  const message = error instanceof Error ? error.message : String(error);
  return new ProviderError('provider', message, { cause: error });
}

/** Asks the model to continue its own reply after a restart, without repeating it. */
export const CONTINUE_INSTRUCTION =
  'Continue your previous reply exactly where it stops, without repeating any of it and without any preamble.';

/**
 * The whole chat a chat-based provider sends: the system prompt first, the conversation, and for a
 * continuation the text so far as the assistant's reply plus {@link CONTINUE_INSTRUCTION} (servers
 * differ on continuing a trailing assistant message; an explicit instruction works with all).
 */
export function chatOf(request: CompletionRequest): ChatMessage[] {
  const chat: ChatMessage[] = request.system === undefined ? [] : [{ role: 'system', content: request.system }];
  chat.push(...request.messages);
  if (request.continuation) {
    chat.push({ role: 'assistant', content: request.continuation }, { role: 'user', content: CONTINUE_INSTRUCTION });
  }
  return chat;
}

/** The text of the last `user` message: what the offline provider continues. */
export function lastUserText(messages: readonly ChatMessage[]): string {
  return messages.findLast((message) => message.role === 'user')?.content ?? '';
}
