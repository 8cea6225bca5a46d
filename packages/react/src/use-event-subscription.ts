/**
 * @module `useEventSubscription`: calls a handler for each event of one catalogue type (payload
 * typed by the protocol), `'*'`, or a client event (`established`, `reset`, `resumed`, `error`).
 */
import type { SSEClientEventKey, SSEClientEventMap } from '@infinitescribe/client';
import { useEffect, useLayoutEffect, useRef } from 'react';
import { useSSEClient } from './sse-provider.js';

// useLayoutEffect warns during server rendering; there is nothing to subscribe to there anyway.
const useIsomorphicLayoutEffect = typeof document === 'undefined' ? useEffect : useLayoutEffect;

/**
 * Calls `handler` for every `type` event of the nearest `SSEProvider`'s client, for as long as
 * the component is mounted. The handler and filter are read from a ref, so passing new inline
 * functions on every render does not resubscribe; only a new `type` (or client) does.
 * @param type A catalogue event type (`'notification'`, `'ai.generation.delta'`, …), `'*'`, or a
 *   client event (`'established'`, `'reset'`, `'resumed'`, `'error'`).
 * @param handler Receives the event: for catalogue types, the envelope with its typed `payload`.
 * @param filter Optional: only events for which it returns true reach `handler`.
 * @example
 * useEventSubscription('notification', (event) => toast(event.payload.title));
 * useEventSubscription('task.progress', onProgress, (event) => event.payload.taskId === taskId);
 */
export function useEventSubscription<TType extends SSEClientEventKey>(
  type: TType,
  handler: (event: SSEClientEventMap[TType]) => void,
  filter?: (event: SSEClientEventMap[TType]) => boolean,
): void {
  const client = useSSEClient();
  const latest = useRef({ handler, filter });
  useIsomorphicLayoutEffect(() => {
    latest.current = { handler, filter };
  });
  useEffect(
    () =>
      client.on(type, (event) => {
        const { handler: current, filter: accept } = latest.current;
        if (!accept || accept(event)) current(event);
      }),
    [client, type],
  );
}
