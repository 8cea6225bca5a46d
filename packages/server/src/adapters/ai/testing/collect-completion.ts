import { ProviderError, type AIProvider, type CompletionRequest, type CompletionUsage } from '../ai-provider.js';

/** A conversation with a system prompt, an earlier exchange and a temperature, as tests send it. */
export const CONVERSATION = {
  system: 'You are terse.',
  messages: [
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello.' },
    { role: 'user', content: 'Tell me a story' },
  ],
  temperature: 0.4,
} satisfies Partial<CompletionRequest>;

/** {@link CONVERSATION} as Chat Completions `messages`: the system prompt first. */
export const CONVERSATION_CHAT = [{ role: 'system', content: CONVERSATION.system }, ...CONVERSATION.messages];

/** What a provider stream gave: the text, its deltas, the usage, and the failure it ended with. */
export interface CompletionOutcome {
  text: string;
  deltas: number;
  usage: CompletionUsage | undefined;
  error: ProviderError | undefined;
}

/**
 * Streams one completion of "Tell me a story" (50 tokens; `request` overrides) to its end and
 * collects it; a {@link ProviderError} is the outcome's `error`, anything else is thrown.
 */
export async function collectCompletion(
  provider: AIProvider,
  options: { signal?: AbortSignal; onDelta?: (text: string) => void; request?: Partial<CompletionRequest> } = {},
): Promise<CompletionOutcome> {
  const outcome: CompletionOutcome = { text: '', deltas: 0, usage: undefined, error: undefined };
  try {
    for await (const chunk of provider.stream({
      messages: [{ role: 'user', content: 'Tell me a story' }],
      maxTokens: 50,
      signal: options.signal ?? new AbortController().signal,
      ...options.request,
    })) {
      if (chunk.type === 'delta') {
        outcome.text += chunk.text;
        outcome.deltas++;
        options.onDelta?.(chunk.text);
      } else outcome.usage = chunk.usage;
    }
  } catch (error) {
    if (!(error instanceof ProviderError)) throw error;
    outcome.error = error;
  }
  return outcome;
}
