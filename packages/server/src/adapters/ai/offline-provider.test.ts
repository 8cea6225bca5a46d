import { afterEach, describe, expect, it, vi } from 'vitest';
import { ProviderError, type CompletionChunk, type CompletionRequest, type CompletionUsage } from './ai-provider.js';
import { MarkovChain, tokenizeWords } from './markov-chain.js';
import { OfflineProvider } from './offline-provider.js';
import { seededRandom } from '../../core/seeded-random.js';

async function complete(
  provider: OfflineProvider,
  prompt: string | Pick<CompletionRequest, 'messages' | 'system'>,
  maxTokens = 60,
  signal = new AbortController().signal,
): Promise<{ tokens: string[]; usage: CompletionUsage | undefined }> {
  const tokens: string[] = [];
  let usage: CompletionUsage | undefined;
  const input = typeof prompt === 'string' ? { messages: [{ role: 'user' as const, content: prompt }] } : prompt;
  for await (const chunk of provider.stream({ ...input, maxTokens, signal })) {
    if (chunk.type === 'delta') tokens.push(chunk.text);
    else usage = chunk.usage;
  }
  return { tokens, usage };
}

const fast = (seed = 1) => new OfflineProvider({ tokensPerSecond: 1_000_000, seed });

describe('OfflineProvider', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is deterministic for a prompt and seed, and varies with either', async () => {
    const first = await complete(fast(7), 'The storm came in');
    const again = await complete(fast(7), 'The storm came in');
    expect(again.tokens).toEqual(first.tokens);
    expect((await complete(fast(8), 'The storm came in')).tokens).not.toEqual(first.tokens);
    expect((await complete(fast(7), 'The letter arrived')).tokens).not.toEqual(first.tokens);
  });

  it('continues the prompt from its last words when the corpus knows them', async () => {
    const { tokens } = await complete(fast(), 'It is a truth universally');
    expect(tokens[0]).toBe(' acknowledged,');
  });

  it('continues the last user message of a conversation; the system prompt and earlier turns count as prompt tokens', async () => {
    const alone = await complete(fast(), 'It is a truth universally');
    const conversation = await complete(fast(), {
      system: 'You write like Jane Austen.',
      messages: [
        { role: 'user', content: 'Begin a novel.' },
        { role: 'assistant', content: 'Chapter one.' },
        { role: 'user', content: 'It is a truth universally' },
      ],
    });
    expect(conversation.tokens).toEqual(alone.tokens);
    expect(alone.usage?.promptTokens).toBe(5);
    expect(conversation.usage?.promptTokens).toBe(5 + 3 + 2 + 5);
  });

  it('writes words, each with its leading space, as readable sentences', async () => {
    const { tokens, usage } = await complete(fast(3), 'Tell me a story about a writer', 120);
    expect(tokens.length).toBeGreaterThan(90);
    for (const token of tokens) expect(token).toMatch(/^ \S+$/);
    const text = tokens.join('');
    expect(text).toMatch(/[.!?]/);
    expect(text).not.toMatch(/["“”]/);
    expect(usage).toEqual({ promptTokens: 7, completionTokens: tokens.length });
  });

  it('never goes past maxTokens', async () => {
    for (const maxTokens of [1, 5, 37]) {
      const { tokens, usage } = await complete(fast(), 'Write about the sea', maxTokens);
      expect(tokens.length).toBeLessThanOrEqual(maxTokens);
      expect(tokens.length).toBeGreaterThanOrEqual(Math.ceil(maxTokens * 0.8));
      expect(usage?.completionTokens).toBe(tokens.length);
    }
  });

  it('streams at about the configured pace', async () => {
    vi.useFakeTimers();
    const provider = new OfflineProvider({ tokensPerSecond: 40, seed: 1 });
    const tokens: string[] = [];
    const done = (async () => {
      for await (const chunk of provider.stream({
        messages: [{ role: 'user', content: 'pace' }],
        maxTokens: 1000,
        signal: new AbortController().signal,
      })) {
        if (chunk.type === 'delta') tokens.push(chunk.text);
      }
    })();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(tokens.length).toBeGreaterThanOrEqual(32);
    expect(tokens.length).toBeLessThanOrEqual(48);
    await vi.advanceTimersByTimeAsync(4_000);
    expect(tokens.length).toBeGreaterThanOrEqual(185);
    expect(tokens.length).toBeLessThanOrEqual(215);
    await vi.runAllTimersAsync();
    await done;
  });

  it('stops promptly when aborted, with an aborted ProviderError', async () => {
    vi.useFakeTimers();
    const provider = new OfflineProvider({ tokensPerSecond: 10, seed: 1 });
    const controller = new AbortController();
    const chunks: CompletionChunk[] = [];
    const done = (async () => {
      for await (const chunk of provider.stream({
        messages: [{ role: 'user', content: 'x' }],
        maxTokens: 100,
        signal: controller.signal,
      })) {
        chunks.push(chunk);
      }
    })();
    const outcome = done.then(
      () => undefined,
      (error: unknown) => error,
    );
    await vi.advanceTimersByTimeAsync(350);
    const before = chunks.length;
    expect(before).toBeGreaterThan(0);
    controller.abort();
    // No timer needs to fire: the pending wait rejects on the abort itself.
    const error = await outcome;
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).kind).toBe('aborted');
    expect(chunks.length).toBe(before);
  });

  it('refuses an already-aborted signal', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(complete(fast(), 'x', 10, controller.signal)).rejects.toMatchObject({ kind: 'aborted' });
  });

  it('labels itself as the offline demo provider', () => {
    expect(fast().info.kind).toBe('offline');
    expect(fast().info.label).toMatch(/offline demo provider/i);
  });
});

describe('MarkovChain', () => {
  const corpus = 'The cat sat on the mat. The dog sat on the rug. A bird sang.';

  it('only follows pairs of the corpus', () => {
    const chain = MarkovChain.fromText(corpus);
    const words = chain.continue('The cat', seededRandom(1));
    const text = Array.from({ length: 30 }, () => words.next().value);
    const allowed = new Set(tokenizeWords(corpus));
    for (const word of text) expect(allowed.has(word)).toBe(true);
    expect(text[0]).toBe('sat');
  });

  it('starts a sentence when the prompt is unknown, and wraps at the end of the corpus', () => {
    const chain = MarkovChain.fromText(corpus);
    const words = chain.continue('zebra quagga', seededRandom(2));
    const first = words.next().value;
    expect(['The', 'A']).toContain(first);
    for (let index = 0; index < 200; index++) words.next();
  });

  it('joins a prompt on its last word alone', () => {
    const chain = MarkovChain.fromText(corpus);
    const words = chain.continue('an unknown bird', seededRandom(3));
    expect(words.next().value).toBe('sang.');
  });

  it('drops quotes and emphasis marks', () => {
    expect(tokenizeWords('“Hello,” said _she_ "loudly".')).toEqual(['Hello,', 'said', 'she', 'loudly.']);
  });

  it('needs three words', () => {
    expect(() => MarkovChain.fromText('too short')).toThrow();
  });
});
