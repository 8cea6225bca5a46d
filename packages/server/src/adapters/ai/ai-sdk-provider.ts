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
/** The AI SDK's current model specification (its `@ai-sdk/provider` types, through `ai`). */
type LanguageModelV3 = Extract<LanguageModel, { specificationVersion: 'v3' }>;
type LanguageModelV3Prompt = Parameters<LanguageModelV3['doStream']>[0]['prompt'];
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
 * A model of the AI SDK's current specification (v3, every provider package we configure) is
 * called directly (`doStream`), not through `streamText`: for a text-only chat without tools,
 * `streamText` adds nothing we use but runs every part through about eight more web streams
 * (step stitching, tool handling, output parsing, its event recorder, a tee, the full-stream
 * mapping, the async-iterable wrapper), which cost more CPU per token than the provider's own
 * parsing (bench/README.md, AI scenario). Other models (older specifications, gateway model ids)
 * go through `streamText`.
 *
 * The direct OpenAI-compatible client stays the default for Chat Completions: it costs less CPU
 * per token (the provider packages validate every streamed chunk against their schema).
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
      if (isV3Model(model)) {
        finished = yield* this.streamModel(sdk, model, request, deadlines);
        return;
      }
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

  /**
   * One generation straight from the model's `doStream` (what `streamText` calls for its one
   * step), read with one reader. True once the reply finished.
   */
  private async *streamModel(
    sdk: AISdk,
    model: LanguageModelV3,
    request: CompletionRequest,
    deadlines: RequestDeadlines,
  ): AsyncGenerator<CompletionChunk, boolean, undefined> {
    let responded = false;
    let stream: ReadableStream<unknown>;
    try {
      ({ stream } = await model.doStream({
        prompt: promptOf(request),
        maxOutputTokens: request.maxTokens,
        ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
        responseFormat: { type: 'text' },
        ...(this.options.providerOptions ? { providerOptions: this.options.providerOptions } : {}),
        abortSignal: deadlines.signal,
      }));
    } catch (error) {
      throw deadlines.reason ?? sdkFailure(sdk, error, responded);
    }
    const reader = (stream as ReadableStream<V3Part>).getReader();
    let lastDataAt = Date.now();
    try {
      for (;;) {
        const { done, value: part } = await reader.read();
        if (done) break;
        lastDataAt = Date.now();
        if (!responded && part.type !== 'error') {
          responded = true;
          deadlines.responded(() => lastDataAt);
        }
        switch (part.type) {
          case 'text-delta':
            if (part.delta !== '') yield { type: 'delta', text: part.delta };
            break;
          case 'error':
            throw deadlines.reason ?? sdkFailure(sdk, part.error, responded);
          case 'finish': {
            // Every wire format says how a reply ended; a stream that ends before it was cut.
            if (part.finishReason.unified === 'other' && part.finishReason.raw === undefined) {
              throw new ProviderError('protocol', 'the provider stream ended before the reply was finished');
            }
            const usage = usageOf({
              inputTokens: part.usage.inputTokens.total,
              outputTokens: part.usage.outputTokens.total,
            });
            if (usage) yield { type: 'usage', usage };
            return true;
          }
          default:
            break;
        }
      }
    } catch (error) {
      // A body cut mid-stream rejects the read rather than sending an error part.
      throw deadlines.reason ?? (error instanceof ProviderError ? error : sdkFailure(sdk, error, responded));
    } finally {
      // Cancelling a finished stream is a no-op; an unfinished one lets go of the response body.
      reader.cancel().catch(() => undefined);
    }
    throw new ProviderError('protocol', 'the provider stream ended without finishing');
  }
}

type V3Part =
  | { type: 'text-delta'; delta: string }
  | { type: 'error'; error: unknown }
  | {
      type: 'finish';
      finishReason: { unified: string; raw: string | undefined };
      usage: { inputTokens: { total: number | undefined }; outputTokens: { total: number | undefined } };
    }
  | { type: 'stream-start' | 'response-metadata' | 'text-start' | 'text-end' | 'raw' };

function isV3Model(model: LanguageModel): model is LanguageModelV3 {
  return typeof model === 'object' && model.specificationVersion === 'v3';
}

/** Our chat in the v3 prompt format (what `streamText` would have converted it to). */
function promptOf(request: CompletionRequest): LanguageModelV3Prompt {
  return chatOf(request).map((message) =>
    message.role === 'system'
      ? { role: 'system', content: message.content }
      : { role: message.role, content: [{ type: 'text', text: message.content }] },
  );
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
