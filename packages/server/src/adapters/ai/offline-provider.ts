import { readFileSync } from 'node:fs';
import {
  ProviderError,
  lastUserText,
  type AIProvider,
  type CompletionChunk,
  type CompletionRequest,
  type ProviderInfo,
} from './ai-provider.js';
import { MarkovChain, endsSentence, tokenizeWords } from './markov-chain.js';
import { hashString, seededRandom } from '../../core/seeded-random.js';

/**
 * The shipped corpus: the opening chapters of Jane Austen's "Pride and Prejudice" (1813, public
 * domain; reproduced from memory, so small differences from printed editions are possible)
 * followed by original prose written for this project and dedicated to the public domain (CC0).
 */
export const OFFLINE_CORPUS_URL = new URL('./offline-corpus.txt', import.meta.url);

/** What the UI and README call it: it is a demo, not an AI model. */
export const OFFLINE_PROVIDER_LABEL = 'Offline demo provider (no AI model: a Markov chain over public-domain prose)';

/** Once past this share of `maxTokens`, a generation ends at the next sentence end. */
const SENTENCE_END_AFTER = 0.8;
/** Without a real wait for this many tokens, yield to the event loop anyway (timers must run). */
const MAX_TOKENS_WITHOUT_YIELD = 32;

/** Options of {@link OfflineProvider}. */
export interface OfflineProviderOptions {
  /** Average pace of the stream. */
  tokensPerSecond: number;
  /** With the prompt, determines the text (and the pacing jitter). */
  seed: number;
  /** Prose to learn from; default the shipped corpus. */
  corpus?: string;
}

let defaultChain: MarkovChain | undefined;

function chainFor(corpus: string | undefined): MarkovChain {
  if (corpus !== undefined) return MarkovChain.fromText(corpus);
  defaultChain ??= MarkovChain.fromText(readFileSync(OFFLINE_CORPUS_URL, 'utf8'));
  return defaultChain;
}

/**
 * The built-in provider used when no AI endpoint is configured: continues the last user message
 * with readable English from a word-level Markov chain (order 2), one word per token at a
 * realistic, slightly uneven pace. The same message and seed always give the same text (the
 * system prompt, earlier turns and temperature do not steer a Markov chain).
 */
export class OfflineProvider implements AIProvider {
  readonly info: ProviderInfo = { kind: 'offline', label: OFFLINE_PROVIDER_LABEL, model: 'offline-markov-2' };
  private readonly chain: MarkovChain;

  constructor(private readonly options: OfflineProviderOptions) {
    if (!(options.tokensPerSecond > 0)) throw new Error('tokensPerSecond must be positive');
    // Built here, at start, not on the first request.
    this.chain = chainFor(options.corpus);
  }

  async *stream(request: CompletionRequest): AsyncGenerator<CompletionChunk, void, undefined> {
    const { signal, maxTokens } = request;
    // A continuation picks up the chain where the text so far stops, as if it had never stopped.
    const context = `${lastUserText(request.messages)}${request.continuation ?? ''}`;
    const seed = hashString(`${this.options.seed}\u0000${context}`);
    const words = this.chain.continue(context, seededRandom(seed));
    const jitter = seededRandom(seed ^ 0x5bd1e995);
    const intervalMs = 1000 / this.options.tokensPerSecond;
    let due = Date.now();
    let withoutYield = 0;
    let count = 0;
    while (count < maxTokens) {
      throwIfAborted(signal);
      // Uneven like a real model (0.5x to 1.5x), the same on average.
      due += intervalMs * (0.5 + jitter());
      const wait = due - Date.now();
      if (wait > 0 || ++withoutYield >= MAX_TOKENS_WITHOUT_YIELD) {
        withoutYield = 0;
        await sleep(Math.max(0, wait), signal);
      }
      const word = words.next().value;
      count++;
      yield { type: 'delta', text: ` ${word}` };
      if (count >= maxTokens * SENTENCE_END_AFTER && endsSentence(word)) break;
    }
    yield {
      type: 'usage',
      usage: { promptTokens: promptWords(request), completionTokens: count },
    };
  }
}

/** Words of the whole input, as the usage's prompt tokens. */
function promptWords(request: CompletionRequest): number {
  const texts = [request.system ?? '', ...request.messages.map((message) => message.content)];
  return texts.reduce((total, text) => total + tokenizeWords(text).length, 0);
}

function abortedError(): ProviderError {
  return new ProviderError('aborted', 'the generation was aborted');
}

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw abortedError();
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(abortedError());
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortedError());
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
