/**
 * @module Coalescing store notifications into one per animation frame, so a stream of 200 tokens
 * a second renders at most once per frame instead of once per token.
 */

/**
 * Schedules `callback` before the next paint; returns a function that cancels it.
 * @example const cancel = scheduleFrame(() => setText(store.get(id).text));
 */
export type FrameScheduler = (callback: () => void) => () => void;

/**
 * `requestAnimationFrame`, or a 16 ms timer where there is none (SSR, workers, Node). A hidden tab
 * gets no frames: its hooks catch up in one render when it is shown again.
 * @example <SSEProvider options={options} scheduleFrame={defaultFrameScheduler}>
 */
export const defaultFrameScheduler: FrameScheduler = (callback) => {
  if (typeof globalThis.requestAnimationFrame === 'function') {
    const handle = globalThis.requestAnimationFrame(() => callback());
    return () => globalThis.cancelAnimationFrame(handle);
  }
  const timer = setTimeout(callback, 16);
  return () => clearTimeout(timer);
};

/** A `subscribe`/`getSnapshot` pair for `useSyncExternalStore` that moves on once per frame. */
export interface FrameBatchedSource<TSnapshot> {
  subscribe(onChange: () => void): () => void;
  getSnapshot(): TSnapshot;
}

/** Input of {@link frameBatched}. */
export interface FrameBatchedInput<TSnapshot> {
  read: () => TSnapshot;
  subscribe: (listener: () => void) => () => void;
  scheduleFrame: FrameScheduler;
}

/**
 * Wraps a store so that `getSnapshot` only moves on in a frame callback: any number of changes
 * between two frames give one notification and one render. (Batching the notification alone is
 * not enough: React also reads `getSnapshot` on unrelated renders, and would show each token.)
 * @example
 * const source = useMemo(() => frameBatched({ read, subscribe, scheduleFrame }), [read, subscribe]);
 * const snapshot = useSyncExternalStore(source.subscribe, source.getSnapshot);
 */
export function frameBatched<TSnapshot>(input: FrameBatchedInput<TSnapshot>): FrameBatchedSource<TSnapshot> {
  let published = input.read();
  return {
    subscribe(onChange) {
      let cancel: (() => void) | undefined;
      const flush = () => {
        cancel = undefined;
        published = input.read();
        onChange();
      };
      const unsubscribe = input.subscribe(() => {
        cancel ??= input.scheduleFrame(flush);
      });
      // Catch up with changes between the render and this subscription; React re-reads
      // getSnapshot right after subscribing and renders again if it moved.
      published = input.read();
      return () => {
        cancel?.();
        unsubscribe();
      };
    },
    getSnapshot: () => published,
  };
}
