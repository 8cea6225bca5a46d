import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../config.js';
import { createAIProvider } from './create-ai-provider.js';
import { OfflineProvider } from './offline-provider.js';
import { OpenAICompatibleProvider } from './openai-compatible-provider.js';

function problemsOf(env: Record<string, string>): string[] {
  try {
    parseConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('parseConfig accepted a bad configuration');
}

describe('AI configuration', () => {
  it('picks the provider from AI_PROVIDER, AI_BASE_URL and AI_API_KEY', () => {
    expect(createAIProvider(parseConfig({}))).toBeInstanceOf(OfflineProvider);
    const keyOnly = createAIProvider(parseConfig({ AI_API_KEY: 'sk', AI_MODEL: 'gpt-5-mini' }));
    expect(keyOnly).toBeInstanceOf(OpenAICompatibleProvider);
    expect(keyOnly.info.kind).toBe('openai-compatible');
    const azure = createAIProvider(
      parseConfig({
        AI_PROVIDER: 'azure-openai',
        AI_BASE_URL: 'https://r.openai.azure.com',
        AI_API_KEY: 'k',
        AI_MODEL: 'm',
      }),
    );
    expect(azure).toBeInstanceOf(OpenAICompatibleProvider);
    expect(azure.info).toMatchObject({ kind: 'azure-openai', model: 'm' });
  });

  it('sends max_completion_tokens to OpenAI and Azure, max_tokens to other servers, unless told', () => {
    const param = (env: Record<string, string>) => parseConfig({ AI_MODEL: 'm', ...env }).aiMaxTokensParam;
    expect(param({ AI_API_KEY: 'sk' })).toBe('max_completion_tokens');
    expect(param({ AI_BASE_URL: 'https://api.openai.com/v1' })).toBe('max_completion_tokens');
    expect(param({ AI_PROVIDER: 'azure-openai', AI_BASE_URL: 'https://r.openai.azure.com', AI_API_KEY: 'k' })).toBe(
      'max_completion_tokens',
    );
    expect(param({ AI_BASE_URL: 'http://localhost:11434/v1' })).toBe('max_tokens');
    expect(param({ AI_BASE_URL: 'http://localhost:11434/v1', AI_MAX_TOKENS_PARAM: 'max_completion_tokens' })).toBe(
      'max_completion_tokens',
    );
    expect(param({ AI_API_KEY: 'sk', AI_MAX_TOKENS_PARAM: 'max_tokens' })).toBe('max_tokens');
  });

  it('reads the model allow-list and the Azure API version', () => {
    const config = parseConfig({ AI_API_KEY: 'k', AI_MODEL: 'm', AI_MODELS: ' a, b ,,c ' });
    expect(config.aiModels).toEqual(['a', 'b', 'c']);
    expect(config.aiAzureApiVersion).toBe('2025-04-01-preview');
    expect(parseConfig({ AI_AZURE_API_VERSION: 'v1' }).aiAzureApiVersion).toBe('v1');
  });

  it('names every AI setting that cannot work, together', () => {
    const problems = problemsOf({
      AI_PROVIDER: 'azure-openai',
      AI_AZURE_API_VERSION: 'latest',
      AI_MAX_TOKENS_PARAM: 'max_output_tokens',
    });
    for (const name of ['AI_MODEL', 'AI_API_KEY', 'AI_BASE_URL', 'AI_AZURE_API_VERSION', 'AI_MAX_TOKENS_PARAM']) {
      expect(
        problems.filter((problem) => problem.startsWith(`${name}: `)),
        name,
      ).toHaveLength(1);
    }
    expect(problemsOf({ AI_PROVIDER: 'mistral' })).toEqual([expect.stringMatching(/^AI_PROVIDER: /)]);
    // A local server needs no key; only the model.
    expect(problemsOf({ AI_BASE_URL: 'http://localhost:11434/v1' })).toEqual([
      expect.stringMatching(/^AI_MODEL: required/),
    ]);
  });
});
