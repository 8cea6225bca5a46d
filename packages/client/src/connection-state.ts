/**
 * @module The connection state machine of the SSE client: its states, the reason codes of every
 * transition into them, the transitions that are allowed, and the snapshot the store publishes.
 * Modelled on centrifuge-js `codes.ts`: every change of state says *why* it happened.
 */
import type { SSEClientError } from './errors.js';

/**
 * Where the connection stands.
 * - `connecting`: the first attempt (or one started by `connect()`/`reconnect()`) is under way.
 * - `open`: a stream is live (`connection.established` arrived).
 * - `reconnecting`: the last attempt failed or the stream dropped; waiting for the backoff
 *   (`retryInMs`/`retryAt` are set) or trying again.
 * - `offline`: the browser says it is offline; nothing is retried until it is online again.
 * - `fallback`: streams never delivered a byte (a buffering proxy); events arrive by long-poll,
 *   and streaming is tried again every `fallbackRetryMs`.
 * - `closed`: stopped for good: by `close()`, or because the server refused us (401 twice, 403).
 */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'offline' | 'fallback' | 'closed';

/**
 * The reason codes of each state: why the client entered it.
 * @example if (snapshot.state === 'closed' && snapshot.reason === 'unauthorized') redirectToLogin();
 */
export interface ConnectionReasons {
  connecting: 'connect_called' | 'reconnect_called';
  open: 'connected' | 'reconnected' | 'stream_restored';
  reconnecting:
    | 'transport_closed'
    | 'network_error'
    | 'server_error'
    | 'too_many_connections'
    | 'heartbeat_timeout'
    | 'first_byte_timeout'
    | 'token_error'
    | 'token_refresh'
    | 'auth_expired'
    | 'online';
  offline: 'browser_offline';
  fallback: 'stream_stalled';
  closed: 'not_started' | 'client_closed' | 'unauthorized' | 'forbidden' | 'rejected';
}

/**
 * Any reason code, of any state.
 * @example const label: Record<ConnectionReason, string> = { ... }; // one UI text per code
 */
export type ConnectionReason = ConnectionReasons[ConnectionState];

/**
 * Which transport carries (or is trying to carry) the events: the configured stream (`fetch`
 * by default, or `eventsource`), or `long-poll` in fallback.
 * @example if (snapshot.transport === 'long-poll') showBadge('degraded');
 */
export type TransportKind = 'fetch' | 'eventsource' | 'long-poll';

/**
 * A state with a reason that belongs to it; discriminated on `state`, so narrowing the state
 * narrows the reason.
 * @example if (status.state === 'reconnecting') log(status.reason); // only reconnecting reasons
 */
export type ConnectionStatus = {
  [TState in ConnectionState]: { state: TState; reason: ConnectionReasons[TState] };
}[ConnectionState];

/**
 * Fields of the snapshot besides state and reason.
 * @example const { attempt, retryAt, lastEventId } = client.getSnapshot();
 */
export interface ConnectionDetails {
  /** Consecutive failed attempts; back to 0 once a connection proves stable (its first heartbeat). */
  attempt: number;
  /** Delay of the scheduled retry, while `reconnecting` waits. */
  retryInMs?: number;
  /** When the scheduled retry fires (epoch ms of the client's `now()`), while `reconnecting` waits. */
  retryAt?: number;
  /** The resume point: the id of the last event delivered, or null before the first one. */
  lastEventId: string | null;
  /** The server's id of the live stream (from `connection.established`), while `open`. */
  connectionId?: string;
  /** The transport in use or being tried. */
  transport: TransportKind;
  /** The failure behind `reconnecting` or `closed`, when there was one. */
  error?: SSEClientError;
}

/**
 * What `getSnapshot()` returns: the same object until something changes, as React's
 * `useSyncExternalStore` requires.
 * @example const { state, reason, retryInMs } = client.getSnapshot();
 */
export type ConnectionSnapshot = ConnectionStatus & ConnectionDetails;

/**
 * The allowed transitions. `connecting` is entered only by `connect()`/`reconnect()`; `closed` is
 * left only that way. Staying in `reconnecting` (another failure) is a transition too.
 * @example CONNECTION_TRANSITIONS.offline // ['connecting', 'reconnecting', 'closed']
 */
export const CONNECTION_TRANSITIONS: Readonly<Record<ConnectionState, readonly ConnectionState[]>> = {
  connecting: ['connecting', 'open', 'reconnecting', 'offline', 'fallback', 'closed'],
  open: ['connecting', 'reconnecting', 'offline', 'closed'],
  reconnecting: ['connecting', 'open', 'reconnecting', 'offline', 'fallback', 'closed'],
  offline: ['connecting', 'reconnecting', 'closed'],
  fallback: ['connecting', 'open', 'reconnecting', 'offline', 'closed'],
  closed: ['connecting'],
};

/**
 * Whether the state machine may go from `from` to `to`.
 * @example canTransition('closed', 'open') === false
 */
export function canTransition(from: ConnectionState, to: ConnectionState): boolean {
  return CONNECTION_TRANSITIONS[from].includes(to);
}
