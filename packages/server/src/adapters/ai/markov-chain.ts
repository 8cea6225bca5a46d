import { pick, type RandomSource } from '../../core/seeded-random.js';

/** Characters dropped from the corpus: double quotes and emphasis marks would come out unbalanced. */
const DROPPED_CHARACTERS = /["“”_]/g;
const SENTENCE_END = /[.!?]$/;

/** Splits prose into words, punctuation attached; quotes and emphasis marks are dropped. */
export function tokenizeWords(text: string): string[] {
  return text
    .replace(DROPPED_CHARACTERS, '')
    .split(/\s+/)
    .filter((word) => word.length > 0);
}

/** Whether `word` ends a sentence. */
export function endsSentence(word: string): boolean {
  return SENTENCE_END.test(word);
}

const keyOf = (first: string, second: string) => `${first} ${second}`.toLowerCase();

/**
 * A word-level Markov chain of order 2: the next word depends on the two before it, with the
 * frequencies of the corpus. Readable enough for a demo, tiny, and deterministic for a given
 * random source.
 */
export class MarkovChain {
  /** Lower-cased "w1 w2" → every word that follows that pair in the corpus (repeats = weight). */
  private readonly successors = new Map<string, string[]>();
  /** Lower-cased word → pairs (as written) ending with it, to join a prompt on its last word. */
  private readonly pairsEndingWith = new Map<string, [string, string][]>();
  /** Pairs that open a sentence. */
  private readonly sentenceStarts: [string, string][] = [];

  constructor(words: readonly string[]) {
    if (words.length < 3) throw new Error('a Markov chain of order 2 needs at least three words');
    for (let index = 0; index + 1 < words.length; index++) {
      const first = words[index] as string;
      const second = words[index + 1] as string;
      const third = words[index + 2];
      const key = keyOf(first, second);
      let list = this.successors.get(key);
      if (!list) {
        list = [];
        this.successors.set(key, list);
        const lastLower = second.toLowerCase();
        const pairs = this.pairsEndingWith.get(lastLower) ?? [];
        pairs.push([first, second]);
        this.pairsEndingWith.set(lastLower, pairs);
      }
      // The last pair has no successor; it wraps to a sentence start when reached.
      if (third !== undefined) list.push(third);
      const previous = words[index - 1];
      if ((previous === undefined || endsSentence(previous)) && /^[A-Z]/.test(first)) {
        this.sentenceStarts.push([first, second]);
      }
    }
    if (this.sentenceStarts.length === 0) this.sentenceStarts.push([words[0] as string, words[1] as string]);
  }

  /** Builds a chain from prose. */
  static fromText(text: string): MarkovChain {
    return new MarkovChain(tokenizeWords(text));
  }

  /**
   * Words continuing `prompt`, endlessly: from the prompt's last two words when the corpus has
   * that pair, else from its last word, else from a sentence start (whose two words come first).
   */
  *continue(prompt: string, random: RandomSource): Generator<string, never, undefined> {
    const promptWords = tokenizeWords(prompt);
    let state = this.joinPrompt(promptWords, random);
    if (!state) {
      state = pick(this.sentenceStarts, random);
      yield state[0];
      yield state[1];
    }
    for (;;) {
      const next = this.successors.get(keyOf(state[0], state[1]));
      if (!next || next.length === 0) {
        // End of the corpus: start a new sentence.
        state = pick(this.sentenceStarts, random);
        yield state[0];
        yield state[1];
        continue;
      }
      const word = pick(next, random);
      yield word;
      state = [state[1], word];
    }
  }

  private joinPrompt(promptWords: readonly string[], random: RandomSource): [string, string] | undefined {
    const last = promptWords.at(-1);
    if (last === undefined) return undefined;
    const beforeLast = promptWords.at(-2);
    if (beforeLast !== undefined && this.successors.has(keyOf(beforeLast, last))) return [beforeLast, last];
    const pairs = this.pairsEndingWith.get(last.toLowerCase());
    return pairs && pairs.length > 0 ? pick(pairs, random) : undefined;
  }
}
