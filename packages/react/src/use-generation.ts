/**
 * @module `useGeneration`: the live text and status of one AI generation, re-rendering at most
 * once per animation frame however fast deltas arrive, and reloading the server's state when
 * events were lost.
 */
import { useMemo, useSyncExternalStore } from 'react';
import { frameBatched } from './frame-scheduler.js';
import type { GenerationSnapshot, GenerationStatus } from '@infinitescribe/client';
import { useSSEContext } from './sse-provider.js';
import { useReload } from './use-reload.js';

/**
 * What {@link useGeneration} returns.
 * @example const { text, status, isStreaming, error } = useGeneration(generationId);
 */
export interface GenerationState {
  /** The id passed in, or null. */
  generationId: string | null;
  /** `idle` when no id is given; otherwise the store's status (`pending` until the first event). */
  status: GenerationStatus | 'idle';
  /** Text so far; the final text once completed. */
  text: string;
  /** Seq of the last delta in `text` (`-1` before the first): keep it with the text to restore it. */
  seq: number;
  /** True while text may still arrive (`pending` or `running`). */
  isStreaming: boolean;
  /** Why it failed, when it failed. */
  error: string | undefined;
  /** Events were lost and the server's state is being (or could not be) reloaded. */
  needsRefetch: boolean;
  /** Token counts of a completed generation, when reported. */
  usage: GenerationSnapshot['usage'];
}

/** Options of {@link useGeneration}. */
export interface UseGenerationOptions {
  /**
   * Reload a generation still `pending` (no event seen) after this many ms, e.g. an id restored
   * after a reload of the page whose events are gone. Default `3000`; `null` never does.
   */
  reloadPendingAfterMs?: number | null;
  /**
   * What this page showed of the generation before a reload (its `text` and `seq`, kept e.g. in
   * `sessionStorage`): shown at once instead of an empty text while the stream catches up, and
   * confirmed with the server. Give it with the id it belongs to only: it is read when that id is
   * first followed, and ignored once anything newer is known.
   */
  restored?: { text: string; seq: number } | null;
}

const IDLE: GenerationState = {
  generationId: null,
  status: 'idle',
  text: '',
  seq: -1,
  isStreaming: false,
  error: undefined,
  needsRefetch: false,
  usage: undefined,
};

/**
 * The state of generation `generationId` (from `POST /api/ai/generations`), folded from its
 * `ai.generation.*` events. Renders at most once per animation frame while text streams in.
 * When a seq gap or a stream reset means events were lost, it reloads
 * `GET /api/ai/generations/:id` once (per gap, for all hooks watching the id).
 * @param generationId The id to follow; `null`/`undefined` gives an `idle` state.
 * @example
 * const { text, isStreaming } = useGeneration(generationId);
 * return <p aria-live="polite">{text}{isStreaming && <Caret />}</p>;
 */
export function useGeneration(
  generationId: string | null | undefined,
  options: UseGenerationOptions = {},
): GenerationState {
  const { generations, loaders, scheduleFrame } = useSSEContext();
  const id = generationId ?? null;
  const { restored } = options;
  const source = useMemo(() => {
    if (id === null) return null;
    // Before the first read, so the first render already shows it; a no-op for a known id. Read
    // when the id changes only (it describes that id), hence not a dependency.
    if (restored) generations.restore(id, restored);
    return frameBatched({
      read: () => generations.get(id),
      subscribe: (listener) => generations.subscribe(id, listener),
      scheduleFrame,
    });
  }, [generations, id, scheduleFrame]);
  const getSnapshot = source?.getSnapshot ?? noSnapshot;
  const snapshot = useSyncExternalStore(source?.subscribe ?? noSubscribe, getSnapshot, getSnapshot);
  const load = loaders.loadGeneration;
  useReload({
    id,
    needsRefetch: snapshot?.needsRefetch ?? false,
    isPending: snapshot?.status === 'pending',
    reloadPendingAfterMs: options.reloadPendingAfterMs === undefined ? 3_000 : options.reloadPendingAfterMs,
    reload: load && id !== null ? (signal) => generations.reload(id, () => load(id, signal)) : undefined,
  });
  return useMemo(() => {
    if (!snapshot) return IDLE;
    return {
      generationId: snapshot.generationId,
      status: snapshot.status,
      text: snapshot.text,
      seq: snapshot.seq,
      isStreaming: snapshot.status === 'pending' || snapshot.status === 'running',
      error: snapshot.error,
      needsRefetch: snapshot.needsRefetch,
      usage: snapshot.usage,
    };
  }, [snapshot]);
}

function noSubscribe(): () => void {
  return () => undefined;
}

function noSnapshot(): null {
  return null;
}
