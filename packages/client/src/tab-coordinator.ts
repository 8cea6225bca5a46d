/**
 * @module One connection per browser, shared by all tabs. Tabs with the same share key compete
 * for a Web Lock; the holder (the leader) runs the real connection and re-broadcasts what it
 * delivers over a BroadcastChannel; the others (followers) never connect and replay those
 * messages into their own handlers and snapshot. When the leader tab closes, the browser releases
 * its lock, the next waiting tab becomes the leader and connects, resuming from the last id it
 * received over the channel. This keeps a browser under the HTTP/1.1 six-connections-per-origin
 * limit however many tabs are open.
 */
import type { AnyPublishedEvent, ClientEmitter, ClientLifecycleEvents } from './client-events.js';
import type { ConnectionSnapshot } from './connection-state.js';
import type { RecentIds, ResumePoint } from './resume.js';

/**
 * The subset of the Web Locks API (`navigator.locks`) the client uses.
 * @example createSSEClient({ url, getToken, locks: navigator.locks })
 */
export interface LockManagerLike {
  request(
    name: string,
    options: { mode: 'exclusive'; signal: AbortSignal },
    callback: () => Promise<void>,
  ): Promise<unknown>;
}

/** The subset of a `BroadcastChannel` the client uses. */
export interface BroadcastChannelLike {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  close(): void;
}

/**
 * A `BroadcastChannel` class (or a stand-in with the same constructor).
 * @example createSSEClient({ url, getToken, BroadcastChannel: globalThis.BroadcastChannel })
 */
export type BroadcastChannelConstructor = new (name: string) => BroadcastChannelLike;

/** What the leader sends its followers; followers send `hello` and `reconnect`. */
export type TabMessage =
  | { kind: 'event'; event: AnyPublishedEvent }
  | { kind: 'control'; key: 'established' | 'reset' | 'resumed'; event: unknown }
  | { kind: 'snapshot'; snapshot: ConnectionSnapshot }
  | { kind: 'hello' }
  | { kind: 'reconnect' };

/** The parts of the client a coordinator drives. */
export interface TabCoordinatorConfig {
  name: string;
  locks: LockManagerLike;
  BroadcastChannel: BroadcastChannelConstructor;
  emitter: ClientEmitter;
  resume: ResumePoint;
  recent: RecentIds;
  /** The real connection's snapshot and its listeners. */
  getLocalSnapshot(): ConnectionSnapshot;
  subscribeLocal(listener: () => void): () => void;
  connectLocal(): void;
  reconnectLocal(): void;
  closeLocal(): void;
}

const CONTROL_KEYS = ['established', 'reset', 'resumed'] as const;

/** Leader election plus event relay for one client; see the module comment. */
export class TabCoordinator {
  private role: 'idle' | 'follower' | 'leader' = 'idle';
  private mirror: ConnectionSnapshot | undefined;
  private channel: BroadcastChannelLike | undefined;
  private session: { abort: AbortController; release: () => void } | undefined;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly config: TabCoordinatorConfig) {
    config.subscribeLocal(() => {
      if (this.role === 'leader') this.post({ kind: 'snapshot', snapshot: config.getLocalSnapshot() });
      if (this.mirror === undefined) this.notify();
    });
    config.emitter.on('*', (event) => {
      if (this.role === 'leader') this.post({ kind: 'event', event });
    });
    for (const key of CONTROL_KEYS) {
      config.emitter.on(key, (event) => {
        if (this.role === 'leader') this.post({ kind: 'control', key, event });
      });
    }
  }

  /** Whether this client currently runs the shared connection. */
  get isLeader(): boolean {
    return this.role === 'leader';
  }

  getSnapshot = (): ConnectionSnapshot => this.mirror ?? this.config.getLocalSnapshot();

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };

  connect(): void {
    if (this.session) return;
    const abort = new AbortController();
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const session = { abort, release: () => release() };
    this.session = session;
    this.channel = new this.config.BroadcastChannel(this.config.name);
    this.channel.addEventListener('message', (message) => this.onMessage(message.data as TabMessage));
    this.role = 'follower';
    const local = this.config.getLocalSnapshot();
    this.setMirror({
      state: 'connecting',
      reason: 'connect_called',
      attempt: 0,
      transport: local.transport,
      lastEventId: this.config.resume.get(),
    });
    this.post({ kind: 'hello' });
    this.config.locks
      .request(this.config.name, { mode: 'exclusive', signal: abort.signal }, () => {
        if (this.session !== session) return Promise.resolve();
        this.role = 'leader';
        this.mirror = undefined;
        this.config.connectLocal();
        this.notify();
        return held;
      })
      .catch(() => undefined); // aborted by close() before the lock was granted
  }

  reconnect(): void {
    if (this.role === 'leader') return this.config.reconnectLocal();
    if (this.role === 'follower') return this.post({ kind: 'reconnect' });
    this.connect();
  }

  close(): void {
    const session = this.session;
    if (!session) return;
    const wasLeader = this.role === 'leader';
    this.session = undefined;
    this.role = 'idle';
    if (wasLeader) this.config.closeLocal();
    else this.setMirror({ ...this.getSnapshot(), state: 'closed', reason: 'client_closed' });
    this.channel?.close();
    this.channel = undefined;
    session.abort.abort();
    session.release(); // frees the lock: the next tab takes over
    if (wasLeader) this.notify();
  }

  private onMessage(message: TabMessage): void {
    if (this.role === 'leader') {
      if (message.kind === 'hello') this.post({ kind: 'snapshot', snapshot: this.config.getLocalSnapshot() });
      if (message.kind === 'reconnect') this.config.reconnectLocal();
      return;
    }
    if (this.role !== 'follower') return;
    const { emitter, recent, resume } = this.config;
    if (message.kind === 'snapshot') {
      if (message.snapshot.lastEventId) resume.set(message.snapshot.lastEventId);
      return this.setMirror({ ...message.snapshot, lastEventId: resume.get() });
    }
    if (message.kind === 'event') {
      const { event } = message;
      if (!recent.add(event.id)) return;
      resume.set(event.id);
      emitter.emitPublished(event);
      return;
    }
    if (message.kind === 'control') {
      emitter.emit(message.key, message.event as ClientLifecycleEvents[typeof message.key]);
    }
  }

  private setMirror(snapshot: ConnectionSnapshot): void {
    this.mirror = snapshot;
    this.notify();
  }

  private post(message: TabMessage): void {
    try {
      this.channel?.postMessage(message);
    } catch {
      // A closed channel or an uncloneable payload: followers catch up from the next message.
    }
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}
