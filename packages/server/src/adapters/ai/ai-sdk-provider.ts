import type * as AI from 'ai';
import type { LanguageModel, ModelMessage, streamText } from 'ai';
import {
  ProviderError,
  chatOf,
  providerMessage,
  toProviderError,
  type AIProvider,
  type CompletionChunk,
  type CompletionRequest,
  type CompletionUsage,
  type ProviderInfo,
} from './ai-provider.js';
import { RequestDeadlines, type ProviderTimeouts } from './request-deadlines.js';

type AISdk = typeof AI;
type ProviderOptions = NonNullable<Parameters<typeof streamText>[0]['providerOptions']>;

/** Options of {@link AISdkProvider}. */
export interface AISdkProviderOptions extends ProviderTimeouts {
  /** How it presents itself; `info.model` is the model of a request that names none. */
  info: ProviderInfo;
  /**
   * The AI SDK model for a model id: an AI SDK provider, e.g. `createAnthropic({ apiKey })`, or a
   * promise of one (the provider package can then be imported only when it is configured).
   */
  languageModel: (modelId: string) => LanguageModel | PromiseLike<LanguageModel>;
  /** Passed to `streamText` as they are (e.g. `{ openai: { store: false } }`). */
  providerOptions?: ProviderOptions;
}

/** The AI SDK, imported once and only by a server that uses it (~100 ms and ~25 MiB). */
let aiSdk: Promise<AISdk> | undefined;
function loadAISdk(): Promise<AISdk> {
  aiSdk ??= import('ai');
  return aiSdk;
}

/**
 * A provider over the AI SDK's `streamText`: any AI SDK provider package (OpenAI's Responses API,
 * Anthropic, Google, OpenAI-compatible servers, or one a host brings) behind our {@link AIProvider}
 * port. The AI SDK speaks the service's wire format; this adapter maps its stream parts to ours,
 * applies our timeouts (the AI SDK has none until the response begins), aborts the upstream request
 * on cancel, and turns every failure into a {@link ProviderError}. No retries (`maxRetries: 0`): a
 * retried request would restart a reply the user already sees streaming.
 *
 * The direct OpenAI-compatible client stays the default for Chat Completions: it costs about half
 * the CPU per token (the AI SDK runs every part through several web streams).
 */
export class AISdkProvider implements AIProvider {
  readonly info: ProviderInfo;

  constructor(private readonly options: AISdkProviderOptions) {
    this.info = options.info;
    // Loaded now, while the server starts, not on the first request.
    loadAISdk().catch(() => undefined);
  }

  async *stream(request: CompletionRequest): AsyncGenerator<CompletionChunk, void, undefined> {
    const deadlines = new RequestDeadlines(request.signal, this.options);
    let finished = false;
    try {
      const [sdk, model] = await Promise.all([
        loadAISdk(),
        this.options.languageModel(request.model ?? this.info.model),
      ]);
      const result = sdk.streamText({
        model,
        messages: chatOf(request) as ModelMessage[],
        // The system prompt leads the chat (as it does in every wire format); said so, no warning.
        allowSystemInMessages: true,
        maxOutputTokens: request.maxTokens,
        ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
        ...(this.options.providerOptions ? { providerOptions: this.options.providerOptions } : {}),
        maxRetries: 0,
        abortSignal: deadlines.signal,
        // Errors arrive as `error` parts below; the default handler would print them to stderr.
        onError: () => undefined,
      });
      let lastDataAt = Date.now();
      let responded = false;
      for await (const part of result.fullStream) {
        lastDataAt = Date.now();
        // Any part from the service but a failure means its response began.
        if (!responded && part.type !== 'start' && part.type !== 'error' && part.type !== 'abort') {
          responded = true;
          deadlines.responded(() => lastDataAt);
        }
        switch (part.type) {
          case 'text-delta':
            if (part.text !== '') yield { type: 'delta', text: part.text };
            break;
          case 'error':
            throw deadlines.reason ?? sdkFailure(sdk, part.error, responded);
          case 'abort':
            throw deadlines.reason ?? new ProviderError('aborted', 'the generation was aborted');
          case 'finish': {
            // Every wire format says how a reply ended; a stream that ends before it was cut.
            if (part.finishReason === 'other' && part.rawFinishReason === undefined) {
              throw new ProviderError('protocol', 'the provider stream ended before the reply was finished');
            }
            const usage = usageOf(part.totalUsage);
            if (usage) yield { type: 'usage', usage };
            finished = true;
            return;
          }
          default:
            break;
        }
      }
      throw new ProviderError('protocol', 'the provider stream ended without finishing');
    } catch (error) {
      throw deadlines.reason ?? toProviderError(error);
    } finally {
      // Whatever ended it early (a failure, the consumer stopping), the upstream request goes too.
      if (!finished) deadlines.abort(new ProviderError('aborted', 'the generation was aborted'));
      deadlines.dispose();
    }
  }
}

/**
 * A failure the AI SDK reports as a {@link ProviderError}: a stream that breaks the wire format
 * (malformed, cut) is `protocol`; before the reply began, the HTTP answer (status and the
 * service's message); after it, the service's error event.
 */
function sdkFailure(sdk: AISdk, error: unknown, responded: boolean): ProviderError {
  const message = providerMessage(error);
  const { InvalidResponseDataError, JSONParseError, TypeValidationError, EmptyResponseBodyError } = sdk;
  const malformed = [InvalidResponseDataError, JSONParseError, TypeValidationError, EmptyResponseBodyError];
  if (malformed.some((type) => type.isInstance(error))) {
    return new ProviderError('protocol', `the provider sent a stream it should not have: ${message}`, { cause: error });
  }
  const status = sdk.APICallError.isInstance(error) ? error.statusCode : undefined;
  if (!responded && status !== undefined) {
    return new ProviderError('http', `the provider answered HTTP ${status}: ${message}`, { status, cause: error });
  }
  if (!responded && status === undefined) {
    return new ProviderError('http', `could not reach the provider: ${message}`, { cause: error });
  }
  return new ProviderError('provider', `the provider reported an error: ${message}`, { cause: error });
}

function usageOf(usage: { inputTokens: number | undefined; outputTokens: number | undefined }) {
  const result: CompletionUsage = {};
  if (usage.inputTokens !== undefined) result.promptTokens = usage.inputTokens;
  if (usage.outputTokens !== undefined) result.completionTokens = usage.outputTokens;
  return Object.keys(result).length > 0 ? result : undefined;
}
