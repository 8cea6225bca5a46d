/**
 * The provider port: one streaming text completion. Adapters: the OpenAI-compatible Chat
 * Completions client and the built-in offline demo provider.
 */

/** What a generation asks a provider for. */
export interface CompletionRequest {
  prompt: string;
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
export class ProviderError extends Error {
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

/** How a provider presents itself (GET /api/ai/provider, logs, the UI's label). */
export interface ProviderInfo {
  kind: 'offline' | 'openai-compatible';
  /** Human label, e.g. "Offline demo provider (no AI model)". */
  label: string;
  model: string;
}

/** A streaming completion source. */
export interface AIProvider {
  readonly info: ProviderInfo;
  /**
   * Streams the completion of `request.prompt`. Ends normally only when the provider said the
   * completion is complete; every failure, including an abort, is a {@link ProviderError}.
   */
  stream(request: CompletionRequest): AsyncIterable<CompletionChunk>;
  /** Frees what the provider holds (pooled connections); called once, after every stream ended. */
  close?(): Promise<void>;
}

/** Wraps anything thrown into a {@link ProviderError} (an abort of `signal` becomes `aborted`). */
export function toProviderError(error: unknown, signal?: AbortSignal): ProviderError {
  if (error instanceof ProviderError) return error;
  if (signal?.aborted) return new ProviderError('aborted', 'the generation was aborted', { cause: error });
  const message = error instanceof Error ? error.message : String(error);
  return new ProviderError('provider', message, { cause: error });
}
