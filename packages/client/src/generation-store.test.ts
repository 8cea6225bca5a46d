import type { EnvelopeWithId } from '@infinitescribe/protocol';
import { describe, expect, it, vi } from 'vitest';
import { GenerationStore, inferSeq, type GenerationEventType } from './generation-store.js';
import { FakeSSEClient } from './testing/fake-sse-client.js';

const ID = 'g1';
let nextId = 0;

function envelope<TType extends GenerationEventType>(
  type: TType,
  payload: EnvelopeWithId<TType>['payload'],
): EnvelopeWithId<GenerationEventType> {
  return { id: String(++nextId), topic: 'user:u1', type, ts: '', payload } as EnvelopeWithId<GenerationEventType>;
}

const delta = (seq: number, text: string) => envelope('ai.generation.delta', { generationId: ID, seq, text });
const snapshot = (seq: number, text: string) => envelope('ai.generation.snapshot', { generationId: ID, seq, text });
const WORDS = ['It ', 'was ', 'a ', 'truth ', 'universally ', 'acknowledged', '.'];

describe('GenerationStore', () => {
  it('starts pending with a stable snapshot, then runs on started', () => {
    const store = new GenerationStore();
    const first = store.get(ID);
    expect(first).toMatchObject({ status: 'pending', text: '', seq: -1, needsRefetch: false });
    expect(store.get(ID)).toBe(first);
    store.apply(envelope('ai.generation.started', { generationId: ID }));
    expect(store.get(ID).status).toBe('running');
  });

  it('appends deltas in seq order and ignores duplicates', () => {
    const store = new GenerationStore();
    store.apply(delta(0, 'Hello'));
    store.apply(delta(1, ', '));
    store.apply(delta(1, ', '));
    store.apply(delta(0, 'Hello'));
    store.apply(delta(2, 'world'));
    expect(store.get(ID)).toMatchObject({ status: 'running', text: 'Hello, world', seq: 2, needsRefetch: false });
  });

  it('holds a delta past a hole, marks needsRefetch, and catches up when the hole fills', () => {
    const store = new GenerationStore();
    store.apply(delta(0, 'a'));
    store.apply(delta(2, 'c'));
    expect(store.get(ID)).toMatchObject({ text: 'a', seq: 0, needsRefetch: true });
    store.apply(delta(3, 'd'));
    store.apply(delta(1, 'b'));
    expect(store.get(ID)).toMatchObject({ text: 'abcd', seq: 3, needsRefetch: false });
  });

  it('gives the same final text for a snapshot then deltas as for all deltas', () => {
    const all = new GenerationStore();
    WORDS.forEach((word, seq) => all.apply(delta(seq, word)));
    const compacted = new GenerationStore();
    compacted.apply(snapshot(3, WORDS.slice(0, 4).join('')));
    WORDS.forEach((word, seq) => seq >= 2 && compacted.apply(delta(seq, word))); // overlap is ignored
    expect(compacted.get(ID).text).toBe(all.get(ID).text);
    expect(compacted.get(ID).text).toBe(WORDS.join(''));
    expect(compacted.get(ID).seq).toBe(WORDS.length - 1);
  });

  it('lets a snapshot fill a hole and keeps held deltas after it', () => {
    const store = new GenerationStore();
    store.apply(delta(0, 'It '));
    store.apply(delta(4, 'universally '));
    store.apply(snapshot(3, 'It was a truth '));
    expect(store.get(ID)).toMatchObject({ text: 'It was a truth universally ', seq: 4, needsRefetch: false });
  });

  it('ignores a snapshot older than the text it has', () => {
    const store = new GenerationStore();
    WORDS.slice(0, 4).forEach((word, seq) => store.apply(delta(seq, word)));
    const before = store.get(ID);
    store.apply(snapshot(1, 'It was '));
    expect(store.get(ID)).toBe(before);
  });

  it('takes the final text from completed and ignores anything after an outcome', () => {
    const store = new GenerationStore();
    store.apply(delta(0, 'Hel'));
    store.apply(delta(2, 'lost'));
    store.apply(
      envelope('ai.generation.completed', { generationId: ID, text: 'Hello there', usage: { completionTokens: 2 } }),
    );
    expect(store.get(ID)).toMatchObject({
      status: 'completed',
      text: 'Hello there',
      needsRefetch: false,
      isTerminal: true,
      usage: { completionTokens: 2 },
    });
    store.apply(delta(3, 'more'));
    store.apply(envelope('ai.generation.failed', { generationId: ID, error: 'late' }));
    expect(store.get(ID)).toMatchObject({ status: 'completed', text: 'Hello there' });
  });

  it('keeps the text so far on failed and cancelled', () => {
    const store = new GenerationStore();
    store.apply(delta(0, 'partial'));
    store.apply(envelope('ai.generation.failed', { generationId: ID, error: 'provider timed out' }));
    expect(store.get(ID)).toMatchObject({ status: 'failed', text: 'partial', error: 'provider timed out' });
    const other = new GenerationStore();
    other.apply(delta(0, 'so far'));
    other.apply(envelope('ai.generation.cancelled', { generationId: ID }));
    expect(other.get(ID)).toMatchObject({ status: 'cancelled', text: 'so far', isTerminal: true });
  });

  it("takes failed's text as final, filling a hole the deltas left", () => {
    const store = new GenerationStore();
    store.apply(delta(0, 'It '));
    store.apply(delta(2, 'a '));
    expect(store.get(ID)).toMatchObject({ text: 'It ', needsRefetch: true });
    store.apply(envelope('ai.generation.failed', { generationId: ID, error: 'provider timed out', text: 'It was a ' }));
    expect(store.get(ID)).toMatchObject({ status: 'failed', text: 'It was a ', needsRefetch: false, isTerminal: true });
  });

  it('notifies only the listeners of the generation that changed, and only on change', () => {
    const store = new GenerationStore();
    const mine = vi.fn();
    const theirs = vi.fn();
    store.subscribe(ID, mine);
    store.subscribe('g2', theirs);
    store.apply(delta(0, 'a'));
    store.apply(delta(0, 'a'));
    expect(mine).toHaveBeenCalledTimes(1);
    expect(theirs).not.toHaveBeenCalled();
  });

  describe('restored after a page reload', () => {
    it('shows what the page showed at once and appends the deltas after its seq', () => {
      const store = new GenerationStore();
      store.restore(ID, { text: 'It was a ', seq: 2 });
      expect(store.get(ID)).toMatchObject({ status: 'running', text: 'It was a ', seq: 2, needsRefetch: false });
      store.apply(delta(2, 'a ')); // replayed: already shown
      store.apply(delta(3, 'truth '));
      expect(store.get(ID)).toMatchObject({ text: 'It was a truth ', seq: 3 });
    });

    it('fills deltas the page received but never showed from a seq-less reload, losing no word', () => {
      const store = new GenerationStore();
      store.restore(ID, { text: 'It was ', seq: 1 });
      // 'a ' (seq 2) reached the page before the reload but was never shown; the stream resumes after it.
      store.apply(delta(3, 'truth '));
      store.apply(delta(4, 'universally '));
      expect(store.get(ID)).toMatchObject({ text: 'It was ', needsRefetch: true });
      store.applyView({ generationId: ID, status: 'running', text: 'It was a truth ' });
      store.apply(delta(5, 'acknowledged'));
      expect(store.get(ID)).toMatchObject({ text: 'It was a truth universally acknowledged', needsRefetch: false });
    });

    it('never replaces what events or a reload already gave', () => {
      const store = new GenerationStore();
      store.apply(delta(0, 'It '));
      store.restore(ID, { text: 'stale', seq: 0 });
      expect(store.get(ID)).toMatchObject({ text: 'It ', needsRefetch: false });
    });
  });

  describe('reloaded views', () => {
    it('applies a view with a seq exactly, then the deltas after it', () => {
      const store = new GenerationStore();
      store.apply(delta(0, 'It '));
      store.apply(delta(5, 'acknowledged'));
      store.applyView({ generationId: ID, status: 'running', text: 'It was a truth universally ', seq: 4 });
      store.apply(delta(6, '.'));
      expect(store.get(ID)).toMatchObject({ text: WORDS.join(''), seq: 6, needsRefetch: false });
    });

    it('infers the seq of a view without one from the held deltas', () => {
      const store = new GenerationStore();
      store.apply(delta(0, 'It '));
      store.apply(delta(3, 'truth '));
      store.apply(delta(4, 'universally '));
      // The server had published up to seq 3 when it answered.
      store.applyView({ generationId: ID, status: 'running', text: 'It was a truth ' });
      expect(store.get(ID)).toMatchObject({ text: 'It was a truth universally ', seq: 4, needsRefetch: false });
      store.apply(delta(5, 'acknowledged'));
      store.apply(delta(6, '.'));
      expect(store.get(ID).text).toBe(WORDS.join(''));
    });

    it('after a reset, confirms deltas a seq-less view already showed instead of doubling them', () => {
      const client = new FakeSSEClient();
      const store = new GenerationStore();
      store.attach(client);
      store.apply(delta(0, 'It '));
      client.emit('reset', { reason: 'unknown_id' });
      expect(store.get(ID).needsRefetch).toBe(true);
      store.applyView({ generationId: ID, status: 'running', text: 'It was a ' });
      expect(store.get(ID).needsRefetch).toBe(false);
      WORDS.forEach((word, seq) => store.apply(delta(seq, word)));
      expect(store.get(ID).text).toBe(WORDS.join(''));
    });

    it('keeps the deltas that raced a seq-less reload: a view older than the text takes nothing back', () => {
      const client = new FakeSSEClient();
      const store = new GenerationStore();
      store.attach(client);
      store.apply(delta(0, 'It '));
      store.apply(delta(1, 'was '));
      client.emit('reset', { reason: 'gap' });
      // The server answered the reload before `a ` (seq 2), which the stream delivered meanwhile.
      store.apply(delta(2, 'a '));
      store.applyView({ generationId: ID, status: 'running', text: 'It was ' });
      expect(store.get(ID)).toMatchObject({ text: 'It was a ', seq: 2, needsRefetch: false });
      WORDS.slice(3).forEach((word, index) => store.apply(delta(index + 3, word)));
      expect(store.get(ID).text).toBe(WORDS.join(''));
    });

    it('takes a finished view as final unless completed already gave the text', () => {
      const store = new GenerationStore();
      store.apply(delta(0, 'a'));
      store.apply(delta(2, 'c'));
      store.applyView({ generationId: ID, status: 'failed', text: 'abc', error: 'boom' });
      expect(store.get(ID)).toMatchObject({ status: 'failed', text: 'abc', error: 'boom', needsRefetch: false });
      store.applyView({ generationId: ID, status: 'running', text: 'abcdef' });
      expect(store.get(ID).text).toBe('abc');
    });

    it('runs one reload at a time per generation', async () => {
      const store = new GenerationStore();
      const load = vi.fn(async () => ({ generationId: ID, status: 'completed' as const, text: 'done' }));
      await Promise.all([store.reload(ID, load), store.reload(ID, load)]);
      expect(load).toHaveBeenCalledTimes(1);
      expect(store.get(ID).text).toBe('done');
    });

    it('inferSeq falls back to the newest held delta when nothing lines up', () => {
      const held = new Map([
        [3, 'x'],
        [4, 'y'],
      ]);
      expect(inferSeq({ seq: 0, held }, 'abcxy')).toBe(4);
      expect(inferSeq({ seq: 0, held }, 'abcx')).toBe(3);
      expect(inferSeq({ seq: 0, held }, 'abcxyz')).toBe(4);
      expect(inferSeq({ seq: 2, held: new Map() }, 'anything')).toBe(2);
    });
  });

  it('attaches to a client: folds its events, marks running ones stale on reset or lossy resume', () => {
    const client = new FakeSSEClient();
    const store = new GenerationStore();
    const detach = store.attach(client);
    client.publish('ai.generation.started', { generationId: ID });
    client.publish('ai.generation.delta', { generationId: ID, seq: 0, text: 'Hi' });
    client.publish('ai.generation.completed', { generationId: 'done', text: 'x' });
    client.emit('resumed', { replayed: 3, complete: true });
    expect(store.get(ID)).toMatchObject({ text: 'Hi', needsRefetch: false });
    client.emit('resumed', { replayed: 3, complete: false });
    expect(store.get(ID).needsRefetch).toBe(true);
    expect(store.get('done').needsRefetch).toBe(false);
    detach();
    expect(client.handlerCount('ai.generation.delta')).toBe(0);
    expect(client.handlerCount('reset')).toBe(0);
  });
});
