import type { Config } from '../config.js';
import type { AIProvider } from './ai-provider.js';
import { OfflineProvider } from './offline-provider.js';
import { OpenAICompatibleProvider } from './openai-compatible-provider.js';

/** Where a key alone (no AI_BASE_URL) points. */
export const OPENAI_BASE_URL = 'https://api.openai.com/v1';

type AIConfig = Pick<
  Config,
  | 'aiBaseUrl'
  | 'aiApiKey'
  | 'aiModel'
  | 'aiConnectTimeoutMs'
  | 'aiIdleTimeoutMs'
  | 'aiTotalTimeoutMs'
  | 'aiOfflineTokensPerSecond'
  | 'aiOfflineSeed'
>;

/**
 * The provider the configuration asks for: OpenAI-compatible when AI_BASE_URL or AI_API_KEY is
 * set (a key alone means OpenAI itself), else the offline demo provider.
 */
export function createAIProvider(config: AIConfig): AIProvider {
  if (config.aiBaseUrl !== undefined || config.aiApiKey !== undefined) {
    if (config.aiModel === undefined) throw new Error('AI_MODEL is required with AI_BASE_URL or AI_API_KEY');
    return new OpenAICompatibleProvider({
      baseUrl: config.aiBaseUrl ?? OPENAI_BASE_URL,
      apiKey: config.aiApiKey,
      model: config.aiModel,
      connectTimeoutMs: config.aiConnectTimeoutMs,
      idleTimeoutMs: config.aiIdleTimeoutMs,
      totalTimeoutMs: config.aiTotalTimeoutMs,
    });
  }
  return new OfflineProvider({ tokensPerSecond: config.aiOfflineTokensPerSecond, seed: config.aiOfflineSeed });
}
