/**
 * @module What the client tells the app: published events by catalogue type (payload narrowed by
 * the protocol's types), `'*'` for all of them, and the client events (`established`, `reset`,
 * `resumed`, `error`). The key spaces cannot collide: catalogue types are dotted
 * `<domain>.<noun>.<verb>` names or `notification`, and a compile-time check below enforces it.
 */
import type { ControlEvents, EnvelopeWithId, EventType } from '@infinitescribe/protocol';
import type { TransportKind } from './connection-state.js';
import { SSEClientError } from './errors.js';

/**
 * `connection.established`: a stream is live.
 * @example client.on('established', ({ connectionId, transport }) => log(connectionId, transport));
 */
export interface EstablishedEvent {
  connectionId: string;
  instanceId: string;
  topics: string[];
  transport: TransportKind;
}

/**
 * `stream.reset`: the server could not resume from our id (`unknown_id`) or events were lost
 * (`gap`, with `since` = oldest id still held). The app must refetch its state; live events keep
 * flowing and the client clears nothing.
 * @example client.on('reset', () => queryClient.invalidateQueries());
 */
export type ResetEvent = ControlEvents['stream.reset'];

/**
 * `stream.resumed`: a resume finished; `complete` is false exactly when something was lost.
 * @example client.on('resumed', ({ replayed, complete }) => complete || refetch());
 */
export type ResumedEvent = ControlEvents['stream.resumed'];

/**
 * Client events that are not published events. `error` gets every failure, transient ones too
 * (each failed attempt), plus errors thrown by handlers (`handler_error`).
 * @example client.on('error', (error) => console.warn(error.code, error.message));
 */
export interface ClientLifecycleEvents {
  established: EstablishedEvent;
  reset: ResetEvent;
  resumed: ResumedEvent;
  error: SSEClientError;
}

/**
 * Everything `client.on(key, handler)` accepts, with the handler's argument for each key.
 * @example client.on('ai.generation.delta', (event) => append(event.payload.text)); // payload typed
 */
export type SSEClientEventMap = { [TType in EventType]: EnvelopeWithId<TType> } & {
  '*': EnvelopeWithId;
} & ClientLifecycleEvents;

/**
 * A key of {@link SSEClientEventMap}.
 * @example const keys: SSEClientEventKey[] = ['notification', '*', 'reset'];
 */
export type SSEClientEventKey = keyof SSEClientEventMap;

// Fails to compile if the catalogue ever gains a type named like a client event.
const noCollision: [Extract<EventType, keyof ClientLifecycleEvents | '*'>] extends [never] ? true : never = true;
void noCollision;

type Handler = (event: never) => void;

/**
 * A small typed emitter. A throwing handler does not stop the others nor the stream: its error goes
 * to the `error` handlers as `handler_error`, or, when there are none (or an `error` handler threw),
 * is rethrown from a microtask so it still reaches the console and error trackers.
 */
export class ClientEmitter {
  private readonly handlers = new Map<string, Set<Handler>>();

  on<TKey extends SSEClientEventKey>(key: TKey, handler: (event: SSEClientEventMap[TKey]) => void): () => void {
    let set = this.handlers.get(key);
    if (!set) this.handlers.set(key, (set = new Set()));
    // Each handler is stored once even if added twice, like addEventListener.
    const stored: Handler = handler;
    set.add(stored);
    return () => {
      set.delete(stored);
    };
  }

  emit<TKey extends SSEClientEventKey>(key: TKey, event: SSEClientEventMap[TKey]): void {
    const set = this.handlers.get(key);
    if (!set) return;
    for (const handler of [...set]) {
      try {
        (handler as (event: SSEClientEventMap[TKey]) => void)(event);
      } catch (error) {
        if (key === 'error' || !this.has('error')) {
          queueMicrotask(() => {
            throw error;
          });
        } else {
          this.emit('error', new SSEClientError('handler_error', `a "${key}" handler threw`, { cause: error }));
        }
      }
    }
  }

  has(key: SSEClientEventKey): boolean {
    return (this.handlers.get(key)?.size ?? 0) > 0;
  }
}
