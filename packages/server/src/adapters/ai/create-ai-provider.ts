import type { LanguageModel } from 'ai';
import type { RealtimeSettings } from '../../core/settings.js';
import { AISdkProvider } from './ai-sdk-provider.js';
import type { AIProvider, ProviderKind } from './ai-provider.js';
import { OfflineProvider } from './offline-provider.js';
import { OpenAICompatibleProvider } from './openai-compatible-provider.js';

/**
 * Where each service is when AI_BASE_URL does not say (a key alone means OpenAI itself). Spelt out
 * rather than left to the AI SDK, whose providers would read OPENAI_BASE_URL and the like.
 */
export const DEFAULT_BASE_URLS = {
  'openai-compatible': 'https://api.openai.com/v1',
  openai: 'https://api.openai.com/v1',
  anthropic: 'https://api.anthropic.com/v1',
  google: 'https://generativelanguage.googleapis.com/v1beta',
} as const;

type AIConfig = Pick<
  RealtimeSettings,
  | 'aiService'
  | 'aiClient'
  | 'aiBaseUrl'
  | 'aiApiKey'
  | 'aiModel'
  | 'aiMaxTokensParam'
  | 'aiAzureApiVersion'
  | 'aiConnectTimeoutMs'
  | 'aiIdleTimeoutMs'
  | 'aiTotalTimeoutMs'
  | 'aiOfflineTokensPerSecond'
  | 'aiOfflineSeed'
>;

const LABELS: Record<Exclude<ProviderKind, 'offline'>, string> = {
  'openai-compatible': 'OpenAI-compatible',
  openai: 'OpenAI',
  'azure-openai': 'Azure OpenAI',
  anthropic: 'Anthropic',
  google: 'Google Gemini',
};

/**
 * The provider the configuration asks for (AI_PROVIDER, AI_CLIENT; see config.ts for the
 * defaults): the offline demo provider, our direct Chat Completions client (OpenAI-compatible
 * servers, OpenAI, Azure OpenAI), or the AI SDK adapter with the service's provider package, which
 * is imported only here and only when configured.
 */
export function createAIProvider(config: AIConfig): AIProvider {
  const { aiService: kind, aiModel: model, aiApiKey: apiKey } = config;
  if (kind === 'offline') {
    return new OfflineProvider({ tokensPerSecond: config.aiOfflineTokensPerSecond, seed: config.aiOfflineSeed });
  }
  if (model === undefined) throw new Error(`AI_MODEL is required with AI_PROVIDER=${kind}`);
  const timeouts = {
    connectTimeoutMs: config.aiConnectTimeoutMs,
    idleTimeoutMs: config.aiIdleTimeoutMs,
    totalTimeoutMs: config.aiTotalTimeoutMs,
  };
  const key = apiKey === undefined ? {} : { apiKey };
  if (config.aiClient === 'direct') {
    if (kind === 'anthropic' || kind === 'google') throw new Error(`AI_PROVIDER=${kind} has no direct client`);
    const azure = kind === 'azure-openai' ? { azure: { apiVersion: config.aiAzureApiVersion } } : {};
    return new OpenAICompatibleProvider({
      baseUrl: config.aiBaseUrl ?? DEFAULT_BASE_URLS.openai,
      ...key,
      model,
      maxTokensParam: config.aiMaxTokensParam,
      ...azure,
      ...timeouts,
    });
  }
  if (kind === 'azure-openai') throw new Error('AI_PROVIDER=azure-openai has no AI SDK client here');
  const info = { kind, label: `${LABELS[kind]} via the AI SDK (${model})`, model };
  const languageModel = aiSdkModels(kind, { baseURL: config.aiBaseUrl ?? DEFAULT_BASE_URLS[kind], ...key });
  // The Responses API keeps every response for 30 days unless told not to; a writing assistant's
  // drafts are not the provider's to keep.
  const providerOptions = kind === 'openai' ? { providerOptions: { openai: { store: false } } } : {};
  return new AISdkProvider({ info, languageModel, ...providerOptions, ...timeouts });
}

/** The AI SDK model of a model id for `kind`, its provider package imported on first use. */
function aiSdkModels(
  kind: 'openai-compatible' | 'openai' | 'anthropic' | 'google',
  settings: { baseURL: string; apiKey?: string },
): (modelId: string) => Promise<LanguageModel> {
  const provider = (async () => {
    switch (kind) {
      case 'openai': {
        const { createOpenAI } = await import('@ai-sdk/openai');
        return createOpenAI(settings).responses;
      }
      case 'anthropic': {
        const { createAnthropic } = await import('@ai-sdk/anthropic');
        return createAnthropic(settings);
      }
      case 'google': {
        const { createGoogleGenerativeAI } = await import('@ai-sdk/google');
        return createGoogleGenerativeAI(settings);
      }
      case 'openai-compatible': {
        const { createOpenAICompatible } = await import('@ai-sdk/openai-compatible');
        return createOpenAICompatible({ name: 'openai-compatible', includeUsage: true, ...settings }).chatModel;
      }
    }
  })();
  provider.catch(() => undefined);
  return async (modelId) => (await provider)(modelId);
}
