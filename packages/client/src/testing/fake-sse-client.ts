/**
 * @module A fake of the `SSEClient` port for component tests: no network, the test sets the
 * connection snapshot and emits events by hand. It implements the same interface as the real
 * client, so hooks cannot tell the difference. (The client's own behaviour is tested against a
 * real server in packages/client; here only the React side is under test.)
 */
import type {
  BuiltInEvents,
  ConnectionSnapshot,
  EventMap,
  PublishedEvent,
  PublishedEventType,
  SSEClient,
  SSEClientEventKey,
  SSEClientEventMap,
  WithBuiltIns,
} from '../index.js';

type Handler = (event: never) => void;

/**
 * A hand-driven {@link SSEClient}.
 * @example
 * const client = new FakeSSEClient();
 * render(<SSEProvider client={client}><App /></SSEProvider>);
 * act(() => client.publish('notification', { title: 'Hi', level: 'info' }));
 * const typed = new FakeSSEClient<AppEvents>(); // publish('comment.added', …) is typed
 */
export class FakeSSEClient<TEvents extends EventMap = BuiltInEvents> implements SSEClient<TEvents> {
  /** Calls of `connect`, `reconnect` and `close`, in order. */
  readonly calls: ('connect' | 'reconnect' | 'close')[] = [];
  private snapshot: ConnectionSnapshot = {
    state: 'closed',
    reason: 'not_started',
    attempt: 0,
    lastEventId: null,
    transport: 'fetch',
  };
  private readonly listeners = new Set<() => void>();
  private readonly handlers = new Map<string, Set<Handler>>();
  private nextId = 1;

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  readonly getSnapshot = (): ConnectionSnapshot => this.snapshot;

  on<TKey extends SSEClientEventKey<TEvents>>(
    key: TKey,
    handler: (event: SSEClientEventMap<TEvents>[TKey]) => void,
  ): () => void {
    let set = this.handlers.get(key);
    if (!set) this.handlers.set(key, (set = new Set()));
    const stored: Handler = handler;
    set.add(stored);
    return () => set.delete(stored);
  }

  connect(): void {
    this.calls.push('connect');
  }

  reconnect(): void {
    this.calls.push('reconnect');
  }

  close(): void {
    this.calls.push('close');
  }

  /** Replaces the connection snapshot and notifies store listeners. */
  setSnapshot(snapshot: ConnectionSnapshot): void {
    this.snapshot = snapshot;
    for (const listener of [...this.listeners]) listener();
  }

  /** Emits any client event (`reset`, `resumed`, `error`, …) or a ready-made envelope. */
  emit<TKey extends SSEClientEventKey<TEvents>>(key: TKey, event: SSEClientEventMap<TEvents>[TKey]): void {
    for (const handler of [...(this.handlers.get(key) ?? [])]) {
      (handler as (event: SSEClientEventMap<TEvents>[TKey]) => void)(event);
    }
  }

  /** Emits a published event of `type` with `payload`, as the real client would (and to `'*'`). */
  publish<TType extends PublishedEventType<TEvents>>(
    type: TType,
    payload: WithBuiltIns<TEvents>[TType],
    topic = 'user:u1',
  ): void {
    const event: PublishedEvent<Record<string, unknown>, string> = {
      id: String(this.nextId++),
      topic,
      type,
      ts: new Date(0).toISOString(),
      payload,
    };
    // Handlers are stored untyped; the event is right for `type` (and '*') by construction.
    for (const key of [type, '*']) {
      for (const handler of [...(this.handlers.get(key) ?? [])]) (handler as (event: unknown) => void)(event);
    }
  }

  /** Number of handlers registered for `key`. */
  handlerCount(key: SSEClientEventKey<TEvents>): number {
    return this.handlers.get(key)?.size ?? 0;
  }

  /** Number of store listeners. */
  get listenerCount(): number {
    return this.listeners.size;
  }
}
