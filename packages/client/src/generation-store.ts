/**
 * @module Folds `ai.generation.*` events into one snapshot per generation: `{text, status, seq}`.
 * Framework-free: React reads it through `useGeneration`; any other app subscribes to it directly.
 *
 * Delta rules (docs/http-api.md, "Events" and "Compaction"): seq counts deltas from 0. A
 * delta is appended only when `seq === lastSeq + 1`; `seq <= lastSeq` is a duplicate and ignored.
 * A delta past a hole is held back and the snapshot is marked `needsRefetch` (the hook reloads
 * `GET /api/ai/generations/:id`); held deltas are applied as soon as the hole is filled, by a
 * late delta, a `snapshot` event or the reload. A `snapshot` replaces the text and sets `seq`, so
 * "snapshot then deltas" ends with the same text as "all deltas". `completed.text` is final.
 */
import type { EnvelopeWithId, EventPayload } from '@infinitescribe/protocol';
import { KeyedStore } from './keyed-store.js';
import type { SSEClient } from './sse-client.js';
import type { LoadedGenerationView } from './state-loaders.js';

/**
 * Where a generation stands, as far as this client knows.
 * - `pending`: asked for (its id is known) but no event has arrived yet.
 * - `running`: started, deltas may be arriving.
 * - `completed` / `failed` / `cancelled`: finished; `completed` carries the final text.
 */
export type GenerationStatus = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';

/**
 * One generation's state. Immutable: a change gives a new object.
 * @example const { text, status, needsRefetch } = store.get(generationId);
 */
export interface GenerationSnapshot {
  readonly generationId: string;
  readonly status: GenerationStatus;
  /** Text so far (the final text once `completed`). */
  readonly text: string;
  /** Seq of the last delta folded into `text`; `-1` before the first. */
  readonly seq: number;
  /** Events were lost (a seq gap or a stream reset): the server's state must be reloaded. */
  readonly needsRefetch: boolean;
  /** Why it failed. */
  readonly error?: string;
  /** Token counts from `completed`, when the provider reported them. */
  readonly usage?: EventPayload<'ai.generation.completed'>['usage'];
  /** True once `completed`, `failed` or `cancelled`. */
  readonly isTerminal: boolean;
}

type GenerationRecord = GenerationSnapshot & {
  /** Deltas held back past a hole, by seq. */
  readonly held: ReadonlyMap<number, string>;
  /**
   * The end of `text` that a seq-less reload added beyond `seq`: deltas that arrive later and
   * match it are already shown, so they advance `seq` without appending.
   */
  readonly unconfirmed: string;
};

/** The `ai.generation.*` event types. */
export type GenerationEventType =
  | 'ai.generation.started'
  | 'ai.generation.delta'
  | 'ai.generation.snapshot'
  | 'ai.generation.completed'
  | 'ai.generation.failed'
  | 'ai.generation.cancelled';

const NO_HELD: ReadonlyMap<number, string> = new Map();

/**
 * The per-generation fold; see the module comment for the rules.
 * @example
 * const store = new GenerationStore();
 * const detach = store.attach(client);
 * store.subscribe(id, () => render(store.get(id).text));
 */
export class GenerationStore {
  private readonly store = new KeyedStore<GenerationRecord>({
    initial: (generationId) => ({
      generationId,
      status: 'pending',
      text: '',
      seq: -1,
      needsRefetch: false,
      isTerminal: false,
      held: NO_HELD,
      unconfirmed: '',
    }),
  });

  /** The snapshot of `generationId` (a stable `pending` one when nothing is known yet). */
  get(generationId: string): GenerationSnapshot {
    return this.store.get(generationId);
  }

  /** Calls `listener` after every change of `generationId`; returns the unsubscribe. */
  subscribe(generationId: string, listener: () => void): () => void {
    return this.store.subscribe(generationId, listener);
  }

  /** Folds one `ai.generation.*` event. */
  apply(event: EnvelopeWithId<GenerationEventType>): void {
    const { generationId } = event.payload;
    this.store.update(generationId, (current) => fold(current, event));
  }

  /**
   * Folds a reloaded server view in, lining the deltas that follow up with its `seq`. Only a view
   * without one (a server from before it was added) has the seq of its text inferred from the
   * held deltas; see {@link inferSeq}.
   */
  applyView(view: LoadedGenerationView): void {
    this.store.update(view.generationId, (current) => foldView(current, view));
  }

  /**
   * Shows what a page showed of `generationId` before it was reloaded (kept e.g. in
   * `sessionStorage`), while nothing newer is known: a `pending` generation becomes `running`
   * with that text and seq, so it never shows empty while the stream catches up. The resumed
   * stream goes on from there: deltas after `seq` append, and a hole (deltas the page received
   * but never showed) reloads the server's view as usual. Not reloaded at once: a view without
   * `seq` is lined up with the deltas held when it arrives, which must predate the request.
   * Does nothing once an event or a reload has been folded in.
   * @example store.restore(id, { text: saved.text, seq: saved.seq });
   */
  restore(generationId: string, shown: { text: string; seq: number }): void {
    this.store.update(generationId, (current) =>
      current.status === 'pending' ? { ...current, status: 'running', ...shown } : current,
    );
  }

  /** Marks every unfinished generation `needsRefetch` (after `stream.reset` or a lossy resume). */
  markStale(): void {
    for (const generationId of this.store.keys()) {
      this.store.update(generationId, (current) =>
        current.isTerminal || current.status === 'pending' || current.needsRefetch
          ? current
          : { ...current, needsRefetch: true },
      );
    }
  }

  /**
   * Reloads `generationId` with `load` unless a reload of it is already running, and folds the
   * answer in. Rejects with the load's error (the snapshot stays `needsRefetch`).
   */
  reload(generationId: string, load: () => Promise<LoadedGenerationView>): Promise<void> {
    return this.store.reload(generationId, async () => this.applyView(await load()));
  }

  /**
   * Feeds the store from `client`: the `ai.generation.*` events, plus `reset` and incomplete
   * `resumed`, which mark unfinished generations stale. Returns the detach function.
   */
  attach(client: SSEClient): () => void {
    const apply = (event: EnvelopeWithId<GenerationEventType>) => this.apply(event);
    const stops = [
      client.on('ai.generation.started', apply),
      client.on('ai.generation.delta', apply),
      client.on('ai.generation.snapshot', apply),
      client.on('ai.generation.completed', apply),
      client.on('ai.generation.failed', apply),
      client.on('ai.generation.cancelled', apply),
      client.on('reset', () => this.markStale()),
      client.on('resumed', ({ complete }) => complete || this.markStale()),
    ];
    return () => {
      for (const stop of stops) stop();
    };
  }
}

function fold(current: GenerationRecord, event: EnvelopeWithId<GenerationEventType>): GenerationRecord {
  // Nothing after an outcome changes a generation (a replayed delta must not reopen it).
  if (current.isTerminal) return current;
  switch (event.type) {
    case 'ai.generation.started':
      return current.status === 'pending' ? { ...current, status: 'running' } : current;
    case 'ai.generation.delta':
      return foldDelta(current, event.payload.seq, event.payload.text);
    case 'ai.generation.snapshot':
      return foldSnapshot(current, event.payload.seq, event.payload.text);
    case 'ai.generation.completed': {
      const { text, usage } = event.payload;
      return finish(current, { status: 'completed', text, ...(usage ? { usage } : {}) });
    }
    case 'ai.generation.failed': {
      const { error, text } = event.payload;
      // With its text, `failed` is final like `completed`; without (an older server, or the text
      // was lost with its process), a hole still open can still be filled by a reload.
      if (text === undefined) return finish(current, { status: 'failed', error });
      return finish({ ...current, needsRefetch: false }, { status: 'failed', error, text });
    }
    case 'ai.generation.cancelled':
      return finish(current, { status: 'cancelled' });
  }
}

function finish(current: GenerationRecord, patch: Partial<GenerationSnapshot>): GenerationRecord {
  const needsRefetch = patch.status !== 'completed' && current.needsRefetch;
  return {
    ...current,
    ...patch,
    needsRefetch,
    isTerminal: true,
    held: needsRefetch ? current.held : NO_HELD,
    unconfirmed: '',
  };
}

function foldDelta(current: GenerationRecord, seq: number, text: string): GenerationRecord {
  if (seq <= current.seq || current.held.has(seq)) return current;
  if (seq !== current.seq + 1) {
    const held = new Map(current.held).set(seq, text);
    return { ...current, status: 'running', held, needsRefetch: true };
  }
  if (current.unconfirmed !== '') {
    // Shown already by a reload: confirm instead of appending twice.
    if (current.unconfirmed.startsWith(text)) {
      return drain({ ...current, seq, unconfirmed: current.unconfirmed.slice(text.length) });
    }
    return drain({ ...current, status: 'running', text: current.text + text, seq, unconfirmed: '' });
  }
  return drain({ ...current, status: 'running', text: current.text + text, seq });
}

function foldSnapshot(current: GenerationRecord, seq: number, text: string): GenerationRecord {
  // Older than what we have: our text already holds it.
  if (seq < current.seq) return current.status === 'pending' ? { ...current, status: 'running' } : current;
  return drain({ ...current, status: 'running', text, seq, unconfirmed: '' });
}

/** Applies held deltas that now follow on, drops those already covered, settles `needsRefetch`. */
function drain(record: GenerationRecord): GenerationRecord {
  if (record.held.size === 0) return record.needsRefetch ? { ...record, needsRefetch: false } : record;
  const held = new Map(record.held);
  let { text, seq } = record;
  for (const heldSeq of held.keys()) if (heldSeq <= seq) held.delete(heldSeq);
  for (let next = held.get(seq + 1); next !== undefined; next = held.get(seq + 1)) {
    held.delete(seq + 1);
    text += next;
    seq += 1;
  }
  return { ...record, text, seq, held: held.size > 0 ? held : NO_HELD, needsRefetch: held.size > 0 };
}

function foldView(current: GenerationRecord, view: LoadedGenerationView): GenerationRecord {
  if (view.status !== 'running') {
    // A `completed` event already gave the final text; anything else takes the server's word.
    if (current.status === 'completed') return current.needsRefetch ? { ...current, needsRefetch: false } : current;
    return {
      ...current,
      status: view.status,
      text: view.text,
      ...(view.error !== undefined ? { error: view.error } : {}),
      needsRefetch: false,
      isTerminal: true,
      held: NO_HELD,
      unconfirmed: '',
    };
  }
  if (current.isTerminal) return current;
  if (view.seq !== undefined) {
    if (view.seq < current.seq) return current;
    return drain({ ...current, status: 'running', text: view.text, seq: view.seq, unconfirmed: '' });
  }
  // A server without `seq` in its view: guess it (the fallback the view's `seq` replaces).
  const seq = inferSeq(current, view.text);
  // Nothing held, and the view is what we show or less: it was read before the deltas that came
  // since (they raced the reload). Taking it would drop them from the text for good.
  if (seq === current.seq && current.text.startsWith(view.text)) {
    return drain({ ...current, status: 'running' });
  }
  // Nothing held to line the text up with: keep our seq and remember what the reload added.
  const unconfirmed =
    seq === current.seq && view.text.startsWith(current.text) ? view.text.slice(current.text.length) : '';
  return drain({ ...current, status: 'running', text: view.text, seq, unconfirmed });
}

/**
 * The seq of the last delta in a reloaded `text` when the server does not say. The reload was
 * asked for after the held deltas arrived, so `text` ends with the run of held deltas up to its
 * last seq: the longest run starting at the first held delta whose concatenation ends `text`
 * wins. When none fits, the text is taken as newer than everything held.
 */
export function inferSeq(record: Pick<GenerationRecord, 'seq' | 'held'>, text: string): number {
  const seqs = [...record.held.keys()].filter((seq) => seq > record.seq).sort((a, b) => a - b);
  if (seqs.length === 0) return record.seq;
  const first = seqs[0] ?? record.seq;
  let run = '';
  let best: number | undefined;
  for (let seq = first; record.held.has(seq); seq++) {
    run += record.held.get(seq);
    if (text.endsWith(run)) best = seq;
  }
  return best ?? seqs[seqs.length - 1] ?? record.seq;
}
