/**
 * @module What the browser says about the network and the page: `online`/`offline` on `window`,
 * `visibilitychange` on `document`. Behind a small interface so the client runs (and is tested)
 * without a DOM.
 */

/**
 * One change the client reacts to: `offline` stops retrying (state `offline`), `online` reconnects
 * at once, `visible` checks liveness now and cuts a network-error wait short, `hidden` changes
 * nothing (hidden tabs keep their stream).
 * @example fakeSignals.fire('offline');
 */
export type BrowserSignal = 'online' | 'offline' | 'visible' | 'hidden';

/**
 * Source of {@link BrowserSignal}s. The default reads `window` and `document`; pass `null` to
 * ignore them, or a fake in tests.
 * @example createSSEClient({ url, getToken, signals: null }) // a worker with no window
 */
export interface BrowserSignals {
  /** Whether the browser believes it is online (`navigator.onLine`). */
  isOnline(): boolean;
  /** Calls `listener` on every change; returns the unsubscribe function. */
  subscribe(listener: (signal: BrowserSignal) => void): () => void;
}

interface EventTargetLike {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
}

/**
 * Signals of the current page, or null where there is no `window` (Node, workers). The default
 * of the `signals` option.
 * @example createSSEClient({ url, getToken, signals: browserSignals() })
 */
export function browserSignals(): BrowserSignals | null {
  const scope = globalThis as {
    window?: EventTargetLike;
    document?: EventTargetLike & { visibilityState?: string };
    navigator?: { onLine?: boolean };
  };
  const { window, document } = scope;
  if (!window) return null;
  return {
    // `navigator.onLine === false` is reliable; `true` only means "some network", hence the default.
    isOnline: () => scope.navigator?.onLine !== false,
    subscribe(listener) {
      const online = () => listener('online');
      const offline = () => listener('offline');
      const visibility = () => listener(document?.visibilityState === 'hidden' ? 'hidden' : 'visible');
      window.addEventListener('online', online);
      window.addEventListener('offline', offline);
      document?.addEventListener('visibilitychange', visibility);
      return () => {
        window.removeEventListener('online', online);
        window.removeEventListener('offline', offline);
        document?.removeEventListener('visibilitychange', visibility);
      };
    },
  };
}
