/**
 * @module Small fakes of the client's other ports for unit tests: a Web Storage, the browser's
 * online/visibility signals, a native EventSource, and a seeded PRNG (so many simulated clients
 * each draw their own reproducible jitter, as real browsers would).
 */
import type { BrowserSignal, BrowserSignals } from '../browser-signals.js';
import type { ResumeStorage } from '../resume.js';
import type { EventSourceLike, EventSourceMessageLike } from '../transports/event-source-transport.js';

/** A Web Storage in memory; share one instance between two clients to simulate a reload. */
export class MemoryStorage implements ResumeStorage {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}

/** Online/visibility signals the test fires by hand. */
export class FakeBrowserSignals implements BrowserSignals {
  online = true;
  private readonly listeners = new Set<(signal: BrowserSignal) => void>();

  isOnline(): boolean {
    return this.online;
  }

  subscribe(listener: (signal: BrowserSignal) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  fire(signal: BrowserSignal): void {
    if (signal === 'online') this.online = true;
    if (signal === 'offline') this.online = false;
    for (const listener of [...this.listeners]) listener(signal);
  }
}

/** A native EventSource stand-in: the test opens it, dispatches named events, or errors it. */
export class FakeEventSource implements EventSourceLike {
  static readonly instances: FakeEventSource[] = [];
  readonly url: URL;
  isClosed = false;
  private readonly listeners = new Map<string, ((event: EventSourceMessageLike) => void)[]>();

  constructor(url: string) {
    this.url = new URL(url);
    FakeEventSource.instances.push(this);
  }

  addEventListener(type: string, listener: (event: EventSourceMessageLike) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  close(): void {
    this.isClosed = true;
  }

  /** The event types the client listens to. */
  get listenedTypes(): string[] {
    return [...this.listeners.keys()];
  }

  open(): void {
    this.dispatch('open', { data: undefined, lastEventId: '' });
  }

  error(): void {
    this.dispatch('error', { data: undefined, lastEventId: '' });
  }

  /** Dispatches `type` like a browser: `lastEventId` is the stream's last id so far. */
  message(type: string, data: object, lastEventId = ''): void {
    this.dispatch(type, { data: JSON.stringify(data), lastEventId });
  }

  private dispatch(type: string, event: EventSourceMessageLike): void {
    if (this.isClosed) return;
    for (const listener of this.listeners.get(type) ?? []) listener(event);
  }
}

/** mulberry32: a tiny seeded PRNG with `[0, 1)` output, one independent stream per seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Web Locks in memory: share one instance between clients to simulate tabs of one browser. */
export class FakeLocks {
  private readonly held = new Set<string>();
  private readonly queues = new Map<string, (() => void)[]>();

  request(name: string, options: { signal: AbortSignal }, callback: () => Promise<void>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const grant = (): void => {
        void callback()
          .then(resolve, reject)
          .finally(() => {
            const next = this.queues.get(name)?.shift();
            if (next) next();
            else this.held.delete(name);
          });
      };
      if (!this.held.has(name)) {
        this.held.add(name);
        return queueMicrotask(grant);
      }
      const queue = this.queues.get(name) ?? [];
      this.queues.set(name, queue);
      queue.push(grant);
      options.signal.addEventListener('abort', () => {
        const index = queue.indexOf(grant);
        if (index >= 0) queue.splice(index, 1);
        reject(new Error('AbortError'));
      });
    });
  }
}

/** BroadcastChannels in memory: each message reaches the other open channels of its name. */
export function fakeBroadcastChannels(): new (name: string) => {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  close(): void;
} {
  const open = new Set<FakeChannel>();
  class FakeChannel {
    private readonly listeners: ((event: { data: unknown }) => void)[] = [];
    constructor(readonly name: string) {
      open.add(this);
    }
    postMessage(message: unknown): void {
      const data = structuredClone(message);
      for (const channel of open) {
        if (channel === this || channel.name !== this.name) continue;
        queueMicrotask(() => {
          if (open.has(channel)) for (const listener of channel.listeners) listener({ data });
        });
      }
    }
    addEventListener(_type: 'message', listener: (event: { data: unknown }) => void): void {
      this.listeners.push(listener);
    }
    close(): void {
      open.delete(this);
    }
  }
  return FakeChannel;
}
