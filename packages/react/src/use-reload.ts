/**
 * @module The reload policy shared by `useGeneration` and `useTaskProgress`: reload at once when
 * events were lost, after a delay when nothing was ever heard of the id, and retry a failed reload
 * a few times with growing delays.
 */
import { useEffect, useLayoutEffect, useRef, useState } from 'react';

const MAX_RETRIES = 5;
const FIRST_RETRY_MS = 1_000;

/** Input of {@link useReload}. */
export interface ReloadInput {
  id: string | null;
  needsRefetch: boolean;
  isPending: boolean;
  /** Delay before reloading a `pending` id; `null`: never. */
  reloadPendingAfterMs: number | null;
  /** Undefined when there is no loader: nothing is reloaded. */
  reload: ((signal: AbortSignal) => Promise<void>) | undefined;
}

const useIsomorphicLayoutEffect = typeof document === 'undefined' ? useEffect : useLayoutEffect;

/** Runs `reload` when the snapshot asks for it; see the module comment. */
export function useReload(input: ReloadInput): void {
  const { id, needsRefetch, isPending, reloadPendingAfterMs } = input;
  const reload = useRef(input.reload);
  useIsomorphicLayoutEffect(() => {
    reload.current = input.reload;
  });
  const hasLoader = input.reload !== undefined;
  const [retry, setRetry] = useState({ id, count: 0 });
  const retries = retry.id === id ? retry.count : 0;

  useEffect(() => {
    if (id === null || !hasLoader) return undefined;
    const delay = needsRefetch ? 0 : isPending ? reloadPendingAfterMs : null;
    if (delay === null) return undefined;
    const controller = new AbortController();
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    const timer = setTimeout(() => {
      reload.current?.(controller.signal).catch(() => {
        // A pending id the server does not know stays pending; a lost stream is worth retrying.
        if (controller.signal.aborted || !needsRefetch || retries >= MAX_RETRIES) return;
        retryTimer = setTimeout(() => setRetry({ id, count: retries + 1 }), FIRST_RETRY_MS * 2 ** retries);
      });
    }, delay);
    return () => {
      clearTimeout(timer);
      clearTimeout(retryTimer);
      controller.abort();
    };
  }, [id, hasLoader, needsRefetch, isPending, reloadPendingAfterMs, retries]);
}
