/**
 * @module What the client tells the app: published events by type (payload typed by the event
 * map: the built-in catalogue, plus the app's own types when it gives its map), `'*'` for all of
 * them, and the client events (`established`, `reset`, `resumed`, `error`). The key spaces cannot
 * collide: built-in types are dotted `<domain>.<noun>.<verb>` names or `notification` (a
 * compile-time check below enforces it), and an app type named like a client event is left out.
 */
import type {
  BuiltInEvents,
  ControlEvents,
  EventMap,
  EventType,
  PublishedEvent,
  WithBuiltIns,
} from '@infinitescribe/protocol';
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

/** The published types of event map `TEvents` (built-in and the app's own) that can be handled by name. */
export type PublishedEventType<TEvents extends EventMap = BuiltInEvents> = Exclude<
  keyof WithBuiltIns<TEvents> & string,
  keyof ClientLifecycleEvents | '*'
>;

/**
 * Everything `client.on(key, handler)` accepts, with the handler's argument for each key. Typed by
 * an event map: the built-in catalogue by default, plus the app's own types when given.
 * @example client.on('ai.generation.delta', (event) => append(event.payload.text)); // payload typed
 * @example
 * type AppEvents = { 'comment.added': { docId: string; text: string } };
 * const handlers: Partial<SSEClientEventMap<AppEvents>> = {}; // 'comment.added' → PublishedEvent with its payload
 */
export type SSEClientEventMap<TEvents extends EventMap = BuiltInEvents> = {
  [TType in PublishedEventType<TEvents>]: PublishedEvent<WithBuiltIns<TEvents>, TType>;
} & {
  '*': PublishedEvent<WithBuiltIns<TEvents>, PublishedEventType<TEvents>>;
} & ClientLifecycleEvents;

/**
 * A key of {@link SSEClientEventMap}.
 * @example const keys: SSEClientEventKey[] = ['notification', '*', 'reset'];
 */
export type SSEClientEventKey<TEvents extends EventMap = BuiltInEvents> = keyof SSEClientEventMap<TEvents>;

// Fails to compile if the catalogue ever gains a type named like a client event.
const noCollision: [Extract<EventType, keyof ClientLifecycleEvents | '*'>] extends [never] ? true : never = true;
void noCollision;

type Handler = (event: never) => void;

/** A published event of any type, as it came off the wire (an app's own types included). */
export type AnyPublishedEvent = PublishedEvent<Record<string, unknown>, string>;

/**
 * A small emitter, keyed by name. A throwing handler does not stop the others nor the stream: its
 * error goes to the `error` handlers as `handler_error`, or, when there are none (or an `error`
 * handler threw), is rethrown from a microtask so it still reaches the console and error trackers.
 */
export class ClientEmitter {
  private readonly handlers = new Map<string, Set<Handler>>();

  on<TEvents extends EventMap = BuiltInEvents, TKey extends SSEClientEventKey<TEvents> = SSEClientEventKey<TEvents>>(
    key: TKey,
    handler: (event: SSEClientEventMap<TEvents>[TKey]) => void,
  ): () => void {
    let set = this.handlers.get(key);
    if (!set) this.handlers.set(key, (set = new Set()));
    // Each handler is stored once even if added twice, like addEventListener.
    const stored: Handler = handler;
    set.add(stored);
    return () => {
      set.delete(stored);
    };
  }

  /** A client event (`established`, `reset`, `resumed`, `error`). */
  emit<TKey extends keyof ClientLifecycleEvents>(key: TKey, event: ClientLifecycleEvents[TKey]): void {
    this.dispatch(key, event);
  }

  /** A published event: to the handlers of its type (whatever the type), then to `'*'`. */
  emitPublished(event: AnyPublishedEvent): void {
    this.dispatch(event.type, event);
    this.dispatch('*', event);
  }

  has(key: SSEClientEventKey): boolean {
    return (this.handlers.get(key)?.size ?? 0) > 0;
  }

  private dispatch(key: string, event: unknown): void {
    const set = this.handlers.get(key);
    if (!set) return;
    for (const handler of [...set]) {
      try {
        (handler as (event: unknown) => void)(event);
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
}
