/**
 * @module `useEventSubscription`: calls a handler for each event of one published type (a
 * built-in one, or the app's own when its event map is given), `'*'`, or a client event
 * (`established`, `reset`, `resumed`, `error`).
 */
import type { BuiltInEvents, EventMap, SSEClientEventKey, SSEClientEventMap } from '@infinitescribe/client';
import { useEffect, useLayoutEffect, useRef } from 'react';
import { useSSEClient } from './sse-provider.js';

// useLayoutEffect warns during server rendering; there is nothing to subscribe to there anyway.
const useIsomorphicLayoutEffect = typeof document === 'undefined' ? useEffect : useLayoutEffect;

/**
 * Calls `handler` for every `type` event of the nearest `SSEProvider`'s client, for as long as
 * the component is mounted. The handler and filter are read from a ref, so passing new inline
 * functions on every render does not resubscribe; only a new `type` (or client) does.
 * `TEvents` is the app's own event map (type → payload, on top of the built-in catalogue); give it
 * with the type to subscribe to a custom type registered on the server.
 * @param type A published event type (`'notification'`, `'ai.generation.delta'`, an app type …),
 *   `'*'`, or a client event (`'established'`, `'reset'`, `'resumed'`, `'error'`).
 * @param handler Receives the event: for published types, `{ id, type, topic, ts, payload }` with
 *   its typed `payload`.
 * @param filter Optional: only events for which it returns true reach `handler`.
 * @example
 * useEventSubscription('notification', (event) => toast(event.payload.title));
 * useEventSubscription('task.progress', onProgress, (event) => event.payload.taskId === taskId);
 * @example
 * type AppEvents = { 'comment.added': { docId: string; text: string } };
 * useEventSubscription<AppEvents, 'comment.added'>('comment.added', (event) => show(event.payload.text));
 */
export function useEventSubscription<
  TEvents extends EventMap = BuiltInEvents,
  TType extends SSEClientEventKey<TEvents> = SSEClientEventKey<TEvents>,
>(
  type: TType,
  handler: (event: SSEClientEventMap<TEvents>[TType]) => void,
  filter?: (event: SSEClientEventMap<TEvents>[TType]) => boolean,
): void {
  const client = useSSEClient<TEvents>();
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
