/**
 * @module `createSSEClient`: the framework-free client. It is a store (`subscribe`/`getSnapshot`,
 * ready for React's `useSyncExternalStore`) plus typed event handlers (`on`). Connection policy
 * lives in `ConnectionController`; this file only resolves options and wires the parts.
 *
 * The client only ever *reads*: streams and polls are GETs. Its only POSTs are the one-use ticket
 * (eventsource mode) and the token refresh of a live stream, both idempotent. It never replays an
 * app's POST (a paid generation is never started twice by a reconnect or a tab becoming visible):
 * after a reconnect, the app learns what happened from replayed events, or from `reset`.
 *
 * Visibility policy: a hidden tab keeps its stream (events for it still arrive); when the page
 * becomes visible the heartbeat watchdog is checked at once (background timers are throttled)
 * and a network-error backoff wait is cut short. Online/offline: `offline` stops all retrying and
 * keeps the resume point; `online` reconnects at once.
 */
import type { BuiltInEvents, EventMap } from '@infinitescribe/protocol';
import { DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import { browserSignals, type BrowserSignals } from './browser-signals.js';
import { ClientEmitter, type SSEClientEventKey, type SSEClientEventMap } from './client-events.js';
import type { GetToken } from './auth.js';
import { ConnectionController } from './connection-controller.js';
import type { ConnectionSnapshot } from './connection-state.js';
import { defaultResumeStorage, RecentIds, ResumePoint, type ResumeStorage } from './resume.js';
import type { FetchLike } from './transport.js';
import { openEventSourceTransport, type EventSourceConstructor } from './transports/event-source-transport.js';
import { openFetchTransport } from './transports/fetch-transport.js';
import { openLongPollTransport } from './transports/long-poll-transport.js';
import { TabCoordinator, type BroadcastChannelConstructor, type LockManagerLike } from './tab-coordinator.js';

/**
 * Options of {@link createSSEClient}. Only `url` and `getToken` are required.
 * @example
 * const client = createSSEClient({
 *   url: 'https://api.example.com',
 *   getToken: ({ forceRefresh }) => auth.accessToken({ forceRefresh }),
 *   topics: ['user:u1', 'doc:42'],
 * });
 */
export interface SSEClientOptions {
  /** Base URL of the server (`''` for same origin). Paths like `/api/sse/stream` are appended. */
  url: string;
  /**
   * Returns the access token; called before every attempt (so every reconnect carries a current
   * token) and with `forceRefresh: true` after a 401, on `auth.expiring` and after `auth.expired`,
   * when a cached token must not be reused. Rejecting or returning `''` means "no token": the
   * client waits and tries again, and never connects without one. Call `close()` on logout.
   */
  getToken: GetToken;
  /** Topics to subscribe to. Default: the server's default (`user:<sub>` plus every granted topic). */
  topics?: readonly string[];
  /**
   * `'fetch'` (default): a fetch stream with `Authorization: Bearer`. `'eventsource'`: the native
   * EventSource with a one-use ticket (for environments where fetch streaming is unavailable).
   */
  transport?: 'fetch' | 'eventsource';
  /**
   * The names of the app's own event types (those registered on the server), for
   * `transport: 'eventsource'` only: a native EventSource hands a named event only to a listener
   * of that name. The fetch stream and the long-poll deliver every type without it.
   */
  eventTypes?: readonly string[];
  /**
   * Where the resume point is kept. Default: `sessionStorage` when usable (per tab; a reload
   * resumes), else memory. `null` keeps it in memory only.
   */
  storage?: ResumeStorage | null;
  /**
   * Storage key of the resume point. Default: `infinitescribe:sse:last-event-id:<url>|<topics>`.
   * Include the user id when one tab may switch users.
   */
  storageKey?: string;
  /** `fetch` to use. Default: `globalThis.fetch`. */
  fetch?: FetchLike;
  /** EventSource class for `transport: 'eventsource'`. Default: `globalThis.EventSource`. */
  EventSource?: EventSourceConstructor;
  /** Online/offline and visibility source. Default: `window`/`document` when present; `null` ignores them. */
  signals?: BrowserSignals | null;
  /** Clock in epoch ms. Default: `Date.now`. */
  now?: () => number;
  /** `[0, 1)` source of the backoff jitter. Default: `Math.random`. */
  random?: () => number;
  /** Reconnect backoff (full jitter). Default: `{ baseMs: 500, maxMs: 30_000 }`. */
  backoff?: Partial<BackoffOptions>;
  /**
   * Heartbeat interval assumed until one is observed (the server never announces it; the client
   * learns it from the gaps between heartbeats). Default `15_000`, the server's HEARTBEAT_MS
   * default. Set it when the server's interval exceeds `heartbeatMs × heartbeatTimeoutFactor`.
   */
  heartbeatMs?: number;
  /** A stream silent for this many heartbeat intervals is reconnected. Default `2.5`. */
  heartbeatTimeoutFactor?: number;
  /** A stream attempt without `connection.established` by then has stalled. Default `10_000`. */
  firstByteTimeoutMs?: number;
  /** Consecutive stalled attempts before falling back to long-poll. Default `3`. */
  fallbackAfterFailures?: number;
  /** While long-polling, try streaming again this often. Default `60_000`. */
  fallbackRetryMs?: number;
  /** `timeoutMs` of each long-poll (server maximum 30 000). Default `25_000`. */
  pollTimeoutMs?: number;
  /** How many recent event ids are remembered for dedupe. Default `1_000`. */
  dedupeWindow?: number;
  /** Connect at creation. Default `true`; with `false`, call `connect()` (e.g. in a React effect). */
  autoConnect?: boolean;
  /**
   * Share one connection between all tabs of this browser with the same `shareKey`: one tab (the
   * Web Locks leader) connects and relays events to the others over a BroadcastChannel; when it
   * closes, another tab takes over and resumes. Default `true` in a page (a `window`) where
   * `navigator.locks` and `BroadcastChannel` exist; `false` gives every tab its own connection.
   */
  shareAcrossTabs?: boolean;
  /**
   * Which clients share a connection (lock and channel name). Default: the `storageKey` (so a
   * storage key with the user id keeps users apart), else `<url>|<topics>`. Include the user id
   * when tabs of one browser may be signed in as different users.
   */
  shareKey?: string;
  /** Web Locks for tab sharing. Default: `navigator.locks`. */
  locks?: LockManagerLike;
  /** BroadcastChannel class for tab sharing. Default: `globalThis.BroadcastChannel`. */
  BroadcastChannel?: BroadcastChannelConstructor;
}

/**
 * The client: a store of the connection snapshot plus typed event handlers. `TEvents` is the app's
 * own event map (type → payload), on top of the built-in catalogue.
 * @example
 * const stop = client.on('notification', (event) => toast(event.payload.title));
 * const unsubscribe = client.subscribe(() => render(client.getSnapshot()));
 */
export interface SSEClient<TEvents extends EventMap = BuiltInEvents> {
  /** Registers a store listener, called after every snapshot change; returns the unsubscribe. */
  subscribe(listener: () => void): () => void;
  /** The current snapshot; the same object until something changes. */
  getSnapshot(): ConnectionSnapshot;
  /**
   * Handles a published event type (built-in or the app's own; payload typed by the event map),
   * `'*'` (every published event), or a client event: `established`, `reset` (refetch your
   * state), `resumed`, `error`. Published events arrive once each, in arrival order, as
   * `{ id, type, topic, ts, payload }`. Returns the unsubscribe function.
   */
  on<TKey extends SSEClientEventKey<TEvents>>(
    key: TKey,
    handler: (event: SSEClientEventMap<TEvents>[TKey]) => void,
  ): () => void;
  /** Starts connecting if the client is `closed`; otherwise does nothing. */
  connect(): void;
  /** Drops the current connection (if any) and connects again now, resetting the backoff. */
  reconnect(): void;
  /** Stops for good (until `connect()`/`reconnect()`); the resume point is kept. */
  close(): void;
}

/** Extra time the client waits for a poll answer beyond the poll's own `timeoutMs`. */
const POLL_GRACE_MS = 10_000;

/**
 * Creates a client and (unless `autoConnect: false`) starts connecting. Give the app's own event
 * map as the type parameter to type its custom events end to end.
 * @example
 * const client = createSSEClient({ url: '', getToken: () => fetchAccessToken() });
 * client.on('ai.generation.delta', ({ payload }) => append(payload.generationId, payload.text));
 * client.on('reset', () => refetchEverything());
 * @example
 * type AppEvents = { 'comment.added': { docId: string; text: string } };
 * const client = createSSEClient<AppEvents>({ url: '', getToken });
 * client.on('comment.added', (event) => showComment(event.payload.docId, event.payload.text));
 */
export function createSSEClient<TEvents extends EventMap = BuiltInEvents>(
  options: SSEClientOptions,
): SSEClient<TEvents> {
  if (typeof options.url !== 'string') throw new TypeError('@infinitescribe/client: `url` must be a string');
  if (typeof options.getToken !== 'function') {
    throw new TypeError('@infinitescribe/client: `getToken` is required; the client never connects anonymously');
  }
  const fetch = options.fetch ?? globalFetch();
  const topics = options.topics ?? [];
  const pollTimeoutMs = Math.min(options.pollTimeoutMs ?? 25_000, 30_000);
  const kind = options.transport ?? 'fetch';
  const EventSourceClass = options.EventSource ?? globalEventSource();
  if (kind === 'eventsource' && !EventSourceClass) {
    throw new TypeError('@infinitescribe/client: `transport: "eventsource"` needs an EventSource class');
  }
  const emitter = new ClientEmitter();
  const storage = options.storage === undefined ? defaultResumeStorage() : options.storage;
  const storageKey = options.storageKey ?? `infinitescribe:sse:last-event-id:${options.url}|${topics.join(',')}`;
  const resume = new ResumePoint(storage, storageKey);
  const recent = new RecentIds(options.dedupeWindow ?? 1_000);

  const controller = new ConnectionController({
    baseUrl: options.url,
    topics,
    getToken: options.getToken,
    fetch,
    streamKind: kind,
    openStream:
      kind === 'eventsource' && EventSourceClass
        ? (request, handlers) => openEventSourceTransport(request, handlers, EventSourceClass, options.eventTypes)
        : openFetchTransport,
    openPoll: (request, handlers) =>
      openLongPollTransport(request, handlers, { timeoutMs: pollTimeoutMs, graceMs: POLL_GRACE_MS }),
    resume,
    recent,
    emitter,
    signals: options.signals === undefined ? browserSignals() : options.signals,
    now: options.now ?? Date.now,
    random: options.random ?? Math.random,
    backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
    heartbeatMs: options.heartbeatMs ?? 15_000,
    heartbeatTimeoutFactor: options.heartbeatTimeoutFactor ?? 2.5,
    firstByteTimeoutMs: options.firstByteTimeoutMs ?? 10_000,
    fallbackAfterFailures: options.fallbackAfterFailures ?? 3,
    fallbackRetryMs: options.fallbackRetryMs ?? 60_000,
  });

  const locks = options.locks ?? globalLocks();
  const BroadcastChannelClass = options.BroadcastChannel ?? globalBroadcastChannel();
  const shared = options.shareAcrossTabs !== false && locks && BroadcastChannelClass;
  const coordinator = shared
    ? new TabCoordinator({
        name: `infinitescribe:sse:share:${options.shareKey ?? storageKey}`,
        locks,
        BroadcastChannel: BroadcastChannelClass,
        emitter,
        resume,
        recent,
        getLocalSnapshot: controller.store.getSnapshot,
        subscribeLocal: controller.store.subscribe,
        connectLocal: () => controller.connect(),
        reconnectLocal: () => controller.reconnect(),
        closeLocal: () => controller.close(),
      })
    : undefined;

  const on: SSEClient<TEvents>['on'] = (key, handler) => emitter.on<TEvents, typeof key>(key, handler);
  const client: SSEClient<TEvents> = coordinator
    ? {
        subscribe: coordinator.subscribe,
        getSnapshot: coordinator.getSnapshot,
        on,
        connect: () => coordinator.connect(),
        reconnect: () => coordinator.reconnect(),
        close: () => coordinator.close(),
      }
    : {
        subscribe: controller.store.subscribe,
        getSnapshot: controller.store.getSnapshot,
        on,
        connect: () => controller.connect(),
        reconnect: () => controller.reconnect(),
        close: () => controller.close(),
      };
  if (options.autoConnect !== false) client.connect();
  return client;
}

function globalFetch(): FetchLike {
  // Looked up per call, so a fetch patched after creation (tests, interceptors) is used.
  return (input, init) => globalThis.fetch(input, init);
}

function globalLocks(): LockManagerLike | undefined {
  // Only pages have tabs: Node >= 24 has `navigator.locks` and BroadcastChannel too, and there
  // clients of one process (or of its workers) would silently share one connection.
  const scope = globalThis as { window?: unknown; navigator?: { locks?: LockManagerLike } };
  return scope.window === undefined ? undefined : scope.navigator?.locks;
}

function globalBroadcastChannel(): BroadcastChannelConstructor | undefined {
  return (globalThis as { BroadcastChannel?: BroadcastChannelConstructor }).BroadcastChannel;
}

function globalEventSource(): EventSourceConstructor | undefined {
  return (globalThis as { EventSource?: EventSourceConstructor }).EventSource;
}
