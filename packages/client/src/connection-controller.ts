/**
 * @module The connection state machine at work: one attempt at a time (plus, in fallback, one
 * streaming probe), backoff between failures, the token policy, the liveness watchdog, the switch
 * to long-poll and back. Transports only report and the store only records; decisions are here.
 */
import type { ControlEvents } from '@infinitescribe/protocol';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import type { BrowserSignal, BrowserSignals } from './browser-signals.js';
import type { ClientEmitter } from './client-events.js';
import type {
  ConnectionDetails,
  ConnectionReasons,
  ConnectionSnapshot,
  ConnectionState,
  TransportKind,
} from './connection-state.js';
import { ConnectionStore } from './connection-store.js';
import { requestToken, refreshStreamToken, type GetToken } from './auth.js';
import { SSEClientError } from './errors.js';
import { decideOnFailure } from './failure-policy.js';
import { HeartbeatWatchdog } from './heartbeat-watchdog.js';
import { deliverControl, parseEnvelope } from './message-parsing.js';
import type { RecentIds, ResumePoint } from './resume.js';
import { StreamProbe } from './stream-probe.js';
import type {
  FetchLike,
  Transport,
  TransportEnd,
  TransportFactory,
  TransportHandlers,
  TransportMessage,
} from './transport.js';

/** Everything the controller needs, already defaulted by `createSSEClient`. */
export interface ControllerConfig {
  baseUrl: string;
  topics: readonly string[];
  getToken: GetToken;
  fetch: FetchLike;
  streamKind: TransportKind;
  openStream: TransportFactory;
  openPoll: TransportFactory;
  resume: ResumePoint;
  recent: RecentIds;
  emitter: ClientEmitter;
  signals: BrowserSignals | null;
  now: () => number;
  random: () => number;
  backoff: BackoffOptions;
  heartbeatMs: number;
  heartbeatTimeoutFactor: number;
  firstByteTimeoutMs: number;
  fallbackAfterFailures: number;
  fallbackRetryMs: number;
}

/** A refresh the server could not answer for now is tried again at most this many times. */
const MAX_REFRESH_RETRIES = 5;

/** 503, 429, other 5xx, or no answer at all: worth another refresh; 401 and 403 are final. */
function isTransientRefreshFailure(error: SSEClientError): boolean {
  const status = error.status;
  return status === undefined || status === 408 || status === 429 || status >= 500;
}

/** Polls answered at once (replays, a misbehaving proxy) are spaced by this, so they cannot spin. */
const MIN_POLL_SPACING_MS = 250;

/** Waits that may be cut short (page visible again, network back): no server asked for them. */
const SKIPPABLE_WAITS: ReadonlySet<ConnectionReasons['reconnecting']> = new Set(['network_error', 'heartbeat_timeout']);

/** One attempt; its transport is set once the token has arrived. */
interface Attempt {
  id: number;
  transport?: Transport | undefined;
}

/** Drives connection attempts; the snapshot lives in its {@link ConnectionStore}. */
export class ConnectionController {
  readonly store: ConnectionStore;
  private readonly watchdog: HeartbeatWatchdog;
  private detachSignals: (() => void) | undefined;

  private nextAttemptId = 0;
  private main: Attempt | undefined;
  private readonly probe: StreamProbe;
  private mode: 'stream' | 'poll' = 'stream';
  private attemptStartedAt = 0;
  /** Consecutive failures: the backoff exponent. */
  private failures = 0;
  /** Consecutive stream attempts without `connection.established` in time. */
  private stalls = 0;
  private serverRetryMs: number | undefined;
  private forceTokenRefresh = false;
  private hasRetriedUnauthorized = false;
  private hasExpired = false;
  private hasOpened = false;

  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private firstByteTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly config: ControllerConfig) {
    const initial: ConnectionSnapshot = {
      state: 'closed',
      reason: 'not_started',
      attempt: 0,
      lastEventId: config.resume.get(),
      transport: config.streamKind,
    };
    this.store = new ConnectionStore(initial, (error) => this.report(error));
    this.watchdog = new HeartbeatWatchdog({
      heartbeatMs: config.heartbeatMs,
      factor: config.heartbeatTimeoutFactor,
      now: config.now,
      onTimeout: () => this.onHeartbeatTimeout(),
    });
    this.probe = new StreamProbe({
      intervalMs: config.fallbackRetryMs,
      timeoutMs: config.firstByteTimeoutMs,
      nextId: () => ++this.nextAttemptId,
      open: async (id) => {
        const token = await requestToken(config.getToken, false);
        if (token instanceof SSEClientError || !this.probe.owns(id)) return undefined;
        return config.openStream(this.request(token), this.handlersFor(id));
      },
    });
  }

  private get snapshot(): ConnectionSnapshot {
    return this.store.getSnapshot();
  }

  connect(): void {
    if (this.snapshot.state === 'closed') this.begin('connect_called');
  }

  reconnect(): void {
    this.begin('reconnect_called');
  }

  close(): void {
    if (this.snapshot.state !== 'closed') this.stop('client_closed');
  }

  private begin(reason: ConnectionReasons['connecting']): void {
    this.teardown();
    this.detachSignals ??= this.config.signals?.subscribe((signal) => this.onSignal(signal));
    this.mode = 'stream';
    this.failures = 0;
    this.stalls = 0;
    this.hasRetriedUnauthorized = false;
    this.hasOpened = false;
    this.transition('connecting', reason, { attempt: 0 });
    if (this.config.signals && !this.config.signals.isOnline()) return this.goOffline();
    void this.startAttempt();
  }

  private stop(reason: ConnectionReasons['closed'], error?: SSEClientError): void {
    this.teardown();
    this.detachSignals?.();
    this.detachSignals = undefined;
    this.transition('closed', reason, { error });
  }

  private async startAttempt(): Promise<void> {
    // Exactly one main attempt at a time: whatever was running is silenced first.
    this.main?.transport?.close();
    const attempt: Attempt = { id: ++this.nextAttemptId };
    this.main = attempt;
    const isPoll = this.mode === 'poll';
    const token = await requestToken(this.config.getToken, this.forceTokenRefresh);
    if (this.main !== attempt) return;
    if (token instanceof SSEClientError) return this.onEnd(attempt.id, { kind: 'failed', error: token });
    this.attemptStartedAt = this.config.now();
    if (!isPoll) this.firstByteTimer = setTimeout(() => this.onStalled(attempt.id), this.config.firstByteTimeoutMs);
    const open = isPoll ? this.config.openPoll : this.config.openStream;
    const transport = open(this.request(token), this.handlersFor(attempt.id));
    if (this.main === attempt) attempt.transport = transport;
    else transport.close();
  }

  private request(token: string) {
    const { baseUrl, topics, fetch, resume } = this.config;
    return { baseUrl, topics, fetch, token, lastEventId: resume.get() };
  }

  private handlersFor(id: number): TransportHandlers {
    return {
      onMessage: (message) => {
        if (this.probe.owns(id)) {
          if (message.event !== 'connection.established') return;
          this.promoteProbe(id);
        }
        if (this.main?.id === id) this.onMessage(message);
      },
      onRetry: (retryMs) => {
        if (this.main?.id === id || this.probe.owns(id)) this.serverRetryMs = retryMs;
      },
      onCursor: (cursor) => {
        if (this.main?.id === id) this.setResumePoint(cursor);
      },
      onEnd: (end) => {
        if (this.probe.owns(id)) return this.probe.fail(id);
        this.onEnd(id, end);
      },
    };
  }

  private onMessage(message: TransportMessage): void {
    this.watchdog.touch(message.event === 'heartbeat');
    if (message.id) return this.deliver(message.id, message.data);
    deliverControl(message, {
      established: (info) => this.onEstablished(info),
      heartbeat: () => {
        // A heartbeat proves the stream outlived one interval: the failure streak is over.
        if (this.failures === 0) return;
        this.failures = 0;
        this.store.patch({ attempt: 0 });
      },
      reset: (reset) => this.config.emitter.emit('reset', reset),
      resumed: (resumed) => this.config.emitter.emit('resumed', resumed),
      expiring: (connectionId) => void this.refreshAuth(connectionId, 0),
      expired: () => {
        this.hasExpired = true;
        this.forceTokenRefresh = true;
      },
      invalid: (error) => this.report(error),
    });
  }

  private deliver(id: string, data: string): void {
    // Dedupe first: a replayed id was delivered (and moved the resume point) already.
    if (!this.config.recent.add(id)) return;
    this.setResumePoint(id);
    const event = parseEnvelope(id, data);
    if (event instanceof SSEClientError) return this.report(event);
    this.config.emitter.emitPublished(event);
  }

  private onEstablished(info: ControlEvents['connection.established']): void {
    // A first stream tells where it starts: keeping that id makes even the first outage resumable.
    if (info.lastEventId !== undefined && this.config.resume.get() === null) this.setResumePoint(info.lastEventId);
    clearTimeout(this.firstByteTimer);
    this.firstByteTimer = undefined;
    this.stalls = 0;
    this.hasRetriedUnauthorized = false;
    this.forceTokenRefresh = false;
    const reason =
      this.snapshot.transport === 'long-poll' ? 'stream_restored' : this.hasOpened ? 'reconnected' : 'connected';
    this.hasOpened = true;
    this.transition('open', reason, { connectionId: info.connectionId, transport: this.config.streamKind });
    this.watchdog.start();
    this.config.emitter.emit('established', { ...info, transport: this.config.streamKind });
  }

  private setResumePoint(id: string): void {
    this.config.resume.set(id);
    this.store.patch({ lastEventId: id });
  }

  private async refreshAuth(connectionId: string, retries: number): Promise<void> {
    const stream = this.main;
    const token = await requestToken(this.config.getToken, true);
    if (this.main !== stream) return; // that stream is gone; the next attempt fetches its own token
    try {
      if (token instanceof SSEClientError) throw token;
      await refreshStreamToken({ baseUrl: this.config.baseUrl, connectionId, token, fetch: this.config.fetch });
    } catch (cause) {
      // The stream will end with `auth.expired`; the next attempt must not reuse a cached token.
      this.forceTokenRefresh = true;
      const error = cause instanceof SSEClientError && cause.code === 'refresh_failed' ? cause : undefined;
      this.report(error ?? new SSEClientError('refresh_failed', 'no fresh token for the refresh', { cause }));
      // The server could not check the token just now (its identity provider blipped: 503), or
      // the network failed: try again while the stream lives, rather than let it expire.
      if (error && isTransientRefreshFailure(error) && retries < MAX_REFRESH_RETRIES) {
        const { backoff, random } = this.config;
        const delay = backoffDelay({ ...backoff, attempt: retries, random, floorMs: error.retryAfterMs });
        clearTimeout(this.refreshTimer);
        this.refreshTimer = setTimeout(() => {
          if (this.main === stream && !this.hasExpired) void this.refreshAuth(connectionId, retries + 1);
        }, delay);
      }
    }
  }

  private onEnd(id: number, end: TransportEnd): void {
    if (this.main?.id !== id) return;
    const wasPoll = this.mode === 'poll';
    const hasExpired = this.hasExpired;
    this.hasExpired = false;
    this.endAttempt();
    if (end.kind === 'ended') {
      if (wasPoll) return this.onPollAnswered();
      // The server ended the stream because the token expired: not an outage, so no backoff.
      if (hasExpired) return this.retryNow('auth_expired');
      return this.scheduleRetry('transport_closed');
    }
    this.handleFailure(end.error, end.retryAfterMs);
  }

  private handleFailure(error: SSEClientError, retryAfterMs?: number): void {
    this.report(error);
    const decision = decideOnFailure(error, { retryAfterMs, hasRetriedUnauthorized: this.hasRetriedUnauthorized });
    switch (decision.action) {
      case 'stop':
        return this.stop(decision.reason, error);
      case 'refresh-token':
        this.hasRetriedUnauthorized = true;
        this.forceTokenRefresh = true;
        return this.retryNow('token_refresh', error);
      case 'backoff':
        return this.scheduleRetry(decision.reason, error, decision.floorMs);
    }
  }

  private onStalled(id: number): void {
    if (this.main?.id !== id) return;
    this.endAttempt();
    this.stalls++;
    const { firstByteTimeoutMs, fallbackAfterFailures } = this.config;
    const error = new SSEClientError(
      'first_byte_timeout',
      `no connection.established within ${firstByteTimeoutMs} ms (a buffering proxy?)`,
    );
    if (this.stalls < fallbackAfterFailures) return this.handleFailure(error);
    this.report(error);
    this.enterFallback(error);
  }

  private onHeartbeatTimeout(): void {
    if (this.snapshot.state !== 'open') return;
    this.endAttempt();
    const { timeoutMs, intervalMs } = this.watchdog;
    const message = `no heartbeat for ${Math.round(timeoutMs)} ms (interval ${Math.round(intervalMs)} ms)`;
    this.handleFailure(new SSEClientError('heartbeat_timeout', message));
  }

  private onPollAnswered(): void {
    this.failures = 0;
    this.hasRetriedUnauthorized = false;
    this.forceTokenRefresh = false;
    if (this.snapshot.state === 'fallback') this.store.patch({ attempt: 0, error: undefined });
    else this.transition('fallback', 'stream_stalled', { attempt: 0 });
    const wait = Math.max(0, MIN_POLL_SPACING_MS - (this.config.now() - this.attemptStartedAt));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.startAttempt();
    }, wait);
  }

  private enterFallback(error: SSEClientError): void {
    this.mode = 'poll';
    this.stalls = 0;
    this.failures = 0;
    this.transition('fallback', 'stream_stalled', { attempt: 0, error });
    this.probe.arm();
    void this.startAttempt();
  }

  /** The probe stream is live: it replaces the poll loop (dedupe absorbs what both delivered). */
  private promoteProbe(id: number): void {
    const transport = this.probe.adopt(id);
    this.endAttempt();
    clearTimeout(this.retryTimer); // the next poll, or a failed poll's backoff
    this.retryTimer = undefined;
    this.mode = 'stream';
    this.failures = 0;
    this.main = { id, transport };
  }

  private scheduleRetry(reason: ConnectionReasons['reconnecting'], error?: SSEClientError, floorMs?: number): void {
    const { backoff, random, now } = this.config;
    const delay = backoffDelay({
      ...backoff,
      attempt: this.failures,
      random,
      serverRetryMs: this.serverRetryMs,
      floorMs,
    });
    this.failures++;
    this.transition('reconnecting', reason, { retryInMs: delay, retryAt: now() + delay, error });
    this.retryTimer = setTimeout(() => this.retryDue(), delay);
  }

  private retryDue(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.store.patch({ retryInMs: undefined, retryAt: undefined });
    void this.startAttempt();
  }

  private retryNow(reason: ConnectionReasons['reconnecting'], error?: SSEClientError): void {
    this.transition('reconnecting', reason, { error });
    void this.startAttempt();
  }

  private onSignal(signal: BrowserSignal): void {
    const { state, reason } = this.snapshot;
    if (signal === 'offline') return this.goOffline();
    if (signal === 'online' && state === 'offline') {
      // A new network: start over with streaming, at once.
      this.mode = 'stream';
      this.failures = 0;
      this.stalls = 0;
      this.transition('reconnecting', 'online', { attempt: 0 });
      return void this.startAttempt();
    }
    if (signal === 'hidden') return; // the stream stays up: hidden tabs still get their events
    // Visible again, or the network is back without an `offline` first. Background tabs throttle
    // timers, so check liveness now, and cut a wait that no server asked for short.
    if (state === 'open' && signal === 'visible') this.watchdog.check();
    if (state === 'reconnecting' && this.retryTimer !== undefined && SKIPPABLE_WAITS.has(reason)) this.retryDue();
  }

  private goOffline(): void {
    const { state } = this.snapshot;
    if (state === 'closed' || state === 'offline') return;
    this.teardown();
    this.transition('offline', 'browser_offline');
  }

  /** Ends the main attempt (its transport stays silent from here on). */
  private endAttempt(): void {
    clearTimeout(this.firstByteTimer);
    this.firstByteTimer = undefined;
    clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    this.watchdog.stop();
    this.main?.transport?.close();
    this.main = undefined;
  }

  private teardown(): void {
    this.endAttempt();
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.probe.stop();
    this.hasExpired = false;
  }

  private report(error: SSEClientError): void {
    this.config.emitter.emit('error', error);
  }

  /** Enters a state; attempt, resume point and transport default to the controller's own. */
  private transition<TState extends ConnectionState>(
    state: TState,
    reason: ConnectionReasons[TState],
    details: Partial<ConnectionDetails> = {},
  ): void {
    this.store.transition(state, reason, {
      ...details,
      attempt: details.attempt ?? this.failures,
      lastEventId: this.config.resume.get(),
      transport: details.transport ?? (this.mode === 'poll' ? 'long-poll' : this.config.streamKind),
    });
  }
}
