/**
 * @module A fake of the `SSEClient` port for component tests: no network, the test sets the
 * connection snapshot and emits events by hand. It implements the same interface as the real
 * client, so hooks cannot tell the difference. (The client's own behaviour is tested against a
 * real server in packages/client; here only the React side is under test.)
 */
import type {
  ConnectionSnapshot,
  EnvelopeWithId,
  EventPayload,
  EventType,
  SSEClient,
  SSEClientEventKey,
  SSEClientEventMap,
} from '@infinitescribe/client';

type Handler = (event: never) => void;

/**
 * A hand-driven {@link SSEClient}.
 * @example
 * const client = new FakeSSEClient();
 * render(<SSEProvider client={client}><App /></SSEProvider>);
 * act(() => client.publish('notification', { title: 'Hi', level: 'info' }));
 */
export class FakeSSEClient implements SSEClient {
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

  on<TKey extends SSEClientEventKey>(key: TKey, handler: (event: SSEClientEventMap[TKey]) => void): () => void {
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
  emit<TKey extends SSEClientEventKey>(key: TKey, event: SSEClientEventMap[TKey]): void {
    for (const handler of [...(this.handlers.get(key) ?? [])]) {
      (handler as (event: SSEClientEventMap[TKey]) => void)(event);
    }
  }

  /** Emits a published event of `type` with `payload`, as the real client would (and to `'*'`). */
  publish<TType extends EventType>(type: TType, payload: EventPayload<TType>, topic = 'user:u1'): void {
    // The envelope of a generic TType cannot be narrowed by the compiler; it is right by construction.
    const envelope = {
      id: String(this.nextId++),
      topic,
      type,
      ts: new Date(0).toISOString(),
      payload,
    } as unknown as EnvelopeWithId<TType>;
    this.emit(type, envelope as unknown as SSEClientEventMap[TType]);
    this.emit('*', envelope);
  }

  /** Number of handlers registered for `key`. */
  handlerCount(key: SSEClientEventKey): number {
    return this.handlers.get(key)?.size ?? 0;
  }

  /** Number of store listeners. */
  get listenerCount(): number {
    return this.listeners.size;
  }
}
