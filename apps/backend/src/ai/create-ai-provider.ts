import type { Config } from '../config.js';
import type { AIProvider } from './ai-provider.js';
import { OfflineProvider } from './offline-provider.js';
import { OpenAICompatibleProvider } from './openai-compatible-provider.js';

/** Where a key alone (no AI_BASE_URL) points: OpenAI itself. */
export const OPENAI_BASE_URL = 'https://api.openai.com/v1';

type AIConfig = Pick<
  Config,
  | 'aiProvider'
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

/**
 * The provider the configuration asks for (AI_PROVIDER; see config.ts for the defaults): the
 * offline demo provider, or our direct Chat Completions client (OpenAI-compatible servers, OpenAI,
 * Azure OpenAI).
 */
export function createAIProvider(config: AIConfig): AIProvider {
  const { aiProvider: kind, aiModel: model, aiApiKey: apiKey } = config;
  if (kind === 'offline') {
    return new OfflineProvider({ tokensPerSecond: config.aiOfflineTokensPerSecond, seed: config.aiOfflineSeed });
  }
  if (model === undefined) throw new Error(`AI_MODEL is required with AI_PROVIDER=${kind}`);
  const azure = kind === 'azure-openai' ? { azure: { apiVersion: config.aiAzureApiVersion } } : {};
  return new OpenAICompatibleProvider({
    baseUrl: config.aiBaseUrl ?? OPENAI_BASE_URL,
    ...(apiKey === undefined ? {} : { apiKey }),
    model,
    maxTokensParam: config.aiMaxTokensParam,
    ...azure,
    connectTimeoutMs: config.aiConnectTimeoutMs,
    idleTimeoutMs: config.aiIdleTimeoutMs,
    totalTimeoutMs: config.aiTotalTimeoutMs,
  });
}
