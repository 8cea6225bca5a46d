/**
 * @module `useSSEConnection`: the client's connection snapshot (state, reason, retry timing) via
 * `useSyncExternalStore`, plus a retry countdown in whole seconds that ticks while reconnecting.
 */
import type { ConnectionSnapshot } from '@infinitescribe/client';
import { useCallback, useEffect, useReducer, useSyncExternalStore } from 'react';
import { useSSEClient } from './sse-provider.js';

/**
 * What {@link useSSEConnection} returns: the client's snapshot (`state`, `reason`, `attempt`,
 * `retryInMs`, `retryAt`, `transport`, `lastEventId`, `connectionId`, `error`) plus derived fields.
 */
export type SSEConnection = ConnectionSnapshot & {
  /**
   * Whole seconds until the scheduled retry (rounded up, ticking every second), while
   * `reconnecting` waits; `undefined` otherwise.
   */
  retryInSeconds: number | undefined;
  /** True while events flow: `open`, or `fallback` (long-poll). */
  isConnected: boolean;
  /** Drops the current attempt or wait and connects again now. */
  reconnect: () => void;
};

/** Options of {@link useSSEConnection}. */
export interface UseSSEConnectionOptions {
  /**
   * The clock `retryAt` is measured on; must be the client's `now` option. Default `Date.now`.
   */
  now?: () => number;
}

/**
 * The connection status of the nearest `SSEProvider`'s client; re-renders on every change and
 * once a second while a retry countdown runs.
 * @example
 * const { state, retryInSeconds } = useSSEConnection();
 * return state === 'reconnecting' && retryInSeconds !== undefined
 *   ? <span>Reconnecting in {retryInSeconds}s</span>
 *   : <span>{state}</span>;
 */
export function useSSEConnection(options: UseSSEConnectionOptions = {}): SSEConnection {
  const client = useSSEClient();
  const snapshot = useSyncExternalStore(client.subscribe, client.getSnapshot, client.getSnapshot);
  const now = options.now ?? Date.now;
  const retryAt = snapshot.state === 'reconnecting' ? snapshot.retryAt : undefined;
  const retryInSeconds = useCountdown(retryAt, now);
  const reconnect = useCallback(() => client.reconnect(), [client]);
  return {
    ...snapshot,
    retryInSeconds,
    isConnected: snapshot.state === 'open' || snapshot.state === 'fallback',
    reconnect,
  };
}

/** Seconds (rounded up) until `deadline`, re-rendering as each second passes. */
function useCountdown(deadline: number | undefined, now: () => number): number | undefined {
  const [, tick] = useReducer((count: number) => count + 1, 0);
  useEffect(() => {
    if (deadline === undefined) return undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const schedule = () => {
      const left = deadline - now();
      if (left <= 0) return;
      // Wake just after the displayed number changes (the next whole second boundary).
      timer = setTimeout(
        () => {
          tick();
          schedule();
        },
        (left % 1000 || 1000) + 5,
      );
    };
    schedule();
    return () => clearTimeout(timer);
  }, [deadline, now]);
  return deadline === undefined ? undefined : Math.max(0, Math.ceil((deadline - now()) / 1000));
}
