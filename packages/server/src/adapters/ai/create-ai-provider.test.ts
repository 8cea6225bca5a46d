import { describe, expect, it } from 'vitest';
import { configProblems as problemsOf } from '../../../test/helpers/config-problems.js';
import { parseConfig } from '../../../../../apps/backend/src/config.js';
import { AISdkProvider } from './ai-sdk-provider.js';
import { createAIProvider } from './create-ai-provider.js';
import { OfflineProvider } from './offline-provider.js';
import { OpenAICompatibleProvider } from './openai-compatible-provider.js';

describe('AI configuration', () => {
  it('picks the provider and client from AI_PROVIDER, AI_BASE_URL and AI_API_KEY', () => {
    expect(createAIProvider(parseConfig({}))).toBeInstanceOf(OfflineProvider);
    const keyOnly = createAIProvider(parseConfig({ AI_API_KEY: 'sk', AI_MODEL: 'gpt-5-mini' }));
    expect(keyOnly).toBeInstanceOf(OpenAICompatibleProvider);
    expect(keyOnly.info.kind).toBe('openai-compatible');
    const cases = [
      [{ AI_PROVIDER: 'openai' }, AISdkProvider, 'openai'],
      [{ AI_PROVIDER: 'openai', AI_CLIENT: 'direct' }, OpenAICompatibleProvider, 'openai-compatible'],
      [{ AI_PROVIDER: 'anthropic' }, AISdkProvider, 'anthropic'],
      [{ AI_PROVIDER: 'google' }, AISdkProvider, 'google'],
      [{ AI_PROVIDER: 'openai-compatible', AI_CLIENT: 'ai-sdk' }, AISdkProvider, 'openai-compatible'],
      [
        { AI_PROVIDER: 'azure-openai', AI_BASE_URL: 'https://r.openai.azure.com' },
        OpenAICompatibleProvider,
        'azure-openai',
      ],
    ] as const;
    for (const [env, type, kind] of cases) {
      const provider = createAIProvider(parseConfig({ AI_API_KEY: 'k', AI_MODEL: 'm', ...env }));
      expect(provider, JSON.stringify(env)).toBeInstanceOf(type);
      expect(provider.info).toMatchObject({ kind, model: 'm' });
    }
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
      AI_CLIENT: 'ai-sdk',
      AI_AZURE_API_VERSION: 'latest',
      AI_MAX_TOKENS_PARAM: 'max_output_tokens',
    });
    for (const name of [
      'AI_MODEL',
      'AI_API_KEY',
      'AI_BASE_URL',
      'AI_CLIENT',
      'AI_AZURE_API_VERSION',
      'AI_MAX_TOKENS_PARAM',
    ]) {
      expect(
        problems.filter((problem) => problem.startsWith(`${name}: `)),
        name,
      ).toHaveLength(1);
    }
    expect(problemsOf({ AI_PROVIDER: 'google', AI_CLIENT: 'direct', AI_API_KEY: 'k', AI_MODEL: 'm' })).toEqual([
      expect.stringMatching(/^AI_CLIENT: anthropic and google go through the AI SDK only/),
    ]);
    expect(problemsOf({ AI_PROVIDER: 'mistral' })).toEqual([expect.stringMatching(/^AI_PROVIDER: /)]);
    // A local server needs no key; only the model.
    expect(problemsOf({ AI_BASE_URL: 'http://localhost:11434/v1' })).toEqual([
      expect.stringMatching(/^AI_MODEL: required/),
    ]);
  });
});
