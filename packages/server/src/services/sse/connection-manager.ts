import type { FastifyBaseLogger } from 'fastify';
import type { EventBus, Unsubscribe } from '../../adapters/bus/event-bus.js';
import type { EventRecord } from '../../core/event-record.js';
import { TooManyConnectionsError } from '../../core/errors.js';
import type { Metrics } from '../../adapters/observability/metrics.js';
import type { CloseReason, ConnectionIdentity, SSEConnection } from './connection.js';
import type { ConnectionLease, ConnectionLeases } from '../../adapters/leases/connection-leases.js';
import { controlFrame, shareFrame, trySharedEventFrame, type SharedFrame } from './frame.js';
import { FrameBatcher } from './frame-batcher.js';

/** Anything that takes live events of a topic: a stream, or a waiting long-poll. */
export interface TopicSubscriber {
  deliver(record: EventRecord, frame: SharedFrame): unknown;
}

interface TopicEntry {
  subscribers: Set<TopicSubscriber>;
  /** The bus subscription; every subscriber waits for it before reading the hot log. */
  ready: Promise<Unsubscribe>;
}

/** Who asks for a slot: a stream's identity (its topics aside), or a waiting long-poll's. */
export type Admittee = Pick<ConnectionIdentity, 'id' | 'userId' | 'ip'>;

/** Options of {@link ConnectionManager}. */
export interface ConnectionManagerOptions {
  bus: EventBus;
  metrics: Metrics;
  logger: FastifyBaseLogger;
  maxConnectionsPerUser: number;
  maxConnectionsPerIp: number;
  /** Every stream gets a `heartbeat` this often, counted from when it opened. */
  heartbeatMs: number;
  /**
   * Makes `maxConnectionsPerUser` cluster-wide (connection-leases.ts); without it the limit is
   * per instance. Leases are refreshed every `leaseRefreshMs` while their streams are open.
   */
  leases?: ConnectionLeases;
  leaseRefreshMs?: number;
}

/**
 * Longest time between two sweeps: heartbeats and token expiries are this precise, and the
 * heartbeats due in one sweep go out together (short sweeps keep those bursts small).
 */
const MAX_SWEEP_MS = 250;

/**
 * The registry of open streams on this instance, by id, user, IP and topic. It holds one bus
 * subscription per topic (reference-counted over local subscribers) and fans each event out as
 * one pre-built frame. One sweep timer serves every stream's heartbeats and token expiry (no timer
 * per stream).
 */
export class ConnectionManager {
  private readonly connections = new Map<string, SSEConnection>();
  private readonly perUser = new Map<string, number>();
  private readonly perIp = new Map<string, number>();
  private readonly topics = new Map<string, TopicEntry>();
  private readonly sweepTimer: NodeJS.Timeout;
  /** Cluster-wide leases held by this instance's streams, by connection id. */
  private readonly leased = new Map<string, ConnectionLease>();
  private readonly leaseRefresh: NodeJS.Timeout | undefined;
  /** Joins each stream's live frames of one event-loop turn into one write; streams take it at creation. */
  readonly batcher = new FrameBatcher();

  constructor(private readonly options: ConnectionManagerOptions) {
    // A tenth of the heartbeat interval at most: each stream's heartbeat is at most that late.
    const sweepMs = Math.max(10, Math.min(MAX_SWEEP_MS, options.heartbeatMs / 10));
    this.sweepTimer = setInterval(() => this.sweep(Date.now()), sweepMs);
    this.sweepTimer.unref();
    const leases = options.leases;
    if (leases) {
      this.leaseRefresh = setInterval(
        () => void leases.refresh([...this.leased.values()]),
        options.leaseRefreshMs ?? 30_000,
      );
      this.leaseRefresh.unref();
    }
  }

  /** Open streams on this instance. */
  get size(): number {
    return this.connections.size;
  }

  /** Streams per user, IP and topic subscriptions held: all zero once every stream has ended. */
  stats(): { connections: number; users: number; ips: number; topics: number } {
    return {
      connections: this.connections.size,
      users: this.perUser.size,
      ips: this.perIp.size,
      topics: this.topics.size,
    };
  }

  get(connectionId: string): SSEConnection | undefined {
    return this.connections.get(connectionId);
  }

  /**
   * Takes a slot for a new stream, or throws 429 past a limit. Synchronous, so two streams opening
   * at the same moment cannot both pass the check. The returned function gives the slot back.
   */
  reserve(userId: string, ip: string): () => void {
    const userCount = this.perUser.get(userId) ?? 0;
    if (userCount >= this.options.maxConnectionsPerUser) {
      throw new TooManyConnectionsError(
        `user has ${userCount} open streams (limit ${this.options.maxConnectionsPerUser})`,
        10,
      );
    }
    const ipCount = this.perIp.get(ip) ?? 0;
    if (ipCount >= this.options.maxConnectionsPerIp) {
      throw new TooManyConnectionsError(
        `address has ${ipCount} open streams (limit ${this.options.maxConnectionsPerIp})`,
        10,
      );
    }
    increment(this.perUser, userId, 1);
    increment(this.perIp, ip, 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      increment(this.perUser, userId, -1);
      increment(this.perIp, ip, -1);
    };
  }

  /**
   * {@link ConnectionManager.reserve}, then the cluster-wide count of the user's streams (when
   * leases are configured): 429 past `maxConnectionsPerUser` on all instances together. The
   * local check comes first and synchronously, so local races are settled before any await.
   * The returned function gives both back.
   */
  admit(identity: Admittee): (() => void) | Promise<() => void> {
    const releaseLocal = this.reserve(identity.userId, identity.ip);
    const leases = this.options.leases;
    // Without leases (one instance) nothing is awaited: no promise for each stream opened.
    if (!leases) return releaseLocal;
    return this.admitAcrossCluster(identity, releaseLocal, leases);
  }

  /** The cluster-wide part of {@link ConnectionManager.admit}: the user's lease. */
  private async admitAcrossCluster(
    identity: Admittee,
    releaseLocal: () => void,
    leases: ConnectionLeases,
  ): Promise<() => void> {
    const lease: ConnectionLease = { userId: identity.userId, connectionId: identity.id };
    const result = await leases.acquire(lease, this.options.maxConnectionsPerUser);
    if (!result.granted) {
      releaseLocal();
      throw new TooManyConnectionsError(
        `user has ${result.held} open streams across the cluster (limit ${this.options.maxConnectionsPerUser})`,
        10,
      );
    }
    this.leased.set(lease.connectionId, lease);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      releaseLocal();
      this.leased.delete(lease.connectionId);
      void leases.release(lease);
    };
  }

  /**
   * Registers a stream and subscribes it to its topics; resolves once every bus subscription is
   * active, so a hot-log read made afterwards cannot miss an event that is not also queued live.
   */
  register(connection: SSEConnection): Promise<void> {
    // Ended while its setup awaited (the client left): its close callback has run already.
    if (connection.isClosed) return Promise.resolve();
    this.track(connection);
    // Not an async function of its own: one promise less per stream opened.
    return this.subscribe(connection.topics, connection);
  }

  /**
   * Registers a fresh stream at the bus's head when the bus knows it without waiting
   * (EventBus.headNow, the in-process bus) and returns that head: the stream is subscribed when
   * this returns, is owed nothing at or below the head, and gets everything above it live. On
   * other buses (or for a stream that has ended) registers nothing and returns undefined: the
   * stream then reads the head, {@link ConnectionManager.register}s and catches up.
   */
  registerAtHead(connection: SSEConnection): number | undefined {
    const bus = this.options.bus;
    if (bus.headNow === undefined || connection.isClosed) return undefined;
    const head = bus.headNow();
    this.track(connection);
    // Each subscription is in effect once subscribeOne returns (headNow's contract), and on such a
    // bus its promise never rejects: nothing to wait for.
    for (const topic of connection.topics) void this.subscribeOne(topic, connection);
    return head;
  }

  private track(connection: SSEConnection): void {
    connection.nextHeartbeatAt = Date.now() + this.options.heartbeatMs;
    this.connections.set(connection.id, connection);
    this.options.metrics.connectionsActive.inc();
    this.options.metrics.connectionsTotal.inc();
  }

  /** Forgets a stream; call from its close callback. */
  unregister(connection: SSEConnection, reason: CloseReason): void {
    if (!this.connections.delete(connection.id)) return;
    this.options.metrics.connectionsActive.dec();
    this.options.metrics.disconnects.inc({ reason });
    this.unsubscribe(connection.topics, connection);
  }

  /** Adds a subscriber to topics; resolves when the bus delivers them. */
  async subscribe(topics: readonly string[], subscriber: TopicSubscriber): Promise<void> {
    // Most streams have one topic: no list of waits for them (a connect burst's garbage).
    if (topics.length === 1) {
      await this.subscribeOne(topics[0] as string, subscriber);
      return;
    }
    await Promise.all(topics.map((topic) => this.subscribeOne(topic, subscriber)));
  }

  /** Adds a subscriber to one topic; the promise is the topic's bus subscription. */
  private subscribeOne(topic: string, subscriber: TopicSubscriber): Promise<Unsubscribe> {
    let entry = this.topics.get(topic);
    if (!entry) {
      const subscribers = new Set<TopicSubscriber>();
      entry = {
        subscribers,
        ready: this.options.bus.subscribe(topic, (record) => this.dispatch(subscribers, record)),
      };
      this.topics.set(topic, entry);
    }
    entry.subscribers.add(subscriber);
    return entry.ready;
  }

  /** Removes a subscriber; the last one out of a topic ends the bus subscription. */
  unsubscribe(topics: readonly string[], subscriber: TopicSubscriber): void {
    for (const topic of topics) {
      const entry = this.topics.get(topic);
      if (!entry || !entry.subscribers.delete(subscriber) || entry.subscribers.size > 0) continue;
      this.topics.delete(topic);
      entry.ready
        .then((unsubscribe) => unsubscribe())
        .catch((error: unknown) => this.options.logger.warn({ err: error, topic }, 'bus unsubscribe failed'));
    }
  }

  /**
   * The bus could not keep `topic` exact (a Redis outage: events were delivered on one instance
   * only, or the hot log lost them): its live streams end, and their clients resume with
   * Last-Event-ID, which gives them an honest `stream.reset {gap}`, the critical events from the
   * store and `stream.resumed {complete: false}`; a stream still resuming plans its replay again
   * instead (SSEConnection.resync). Returns how many streams were ended.
   */
  resyncTopic(topic: string): number {
    let ended = 0;
    for (const connection of [...this.connections.values()]) {
      if (connection.topics.includes(topic) && connection.resync()) ended++;
    }
    return ended;
  }

  /**
   * The bus lost Redis and this instance serves on its own from `since` (the highest id it knew):
   * every stream is told at once with `stream.reset {gap, since}`; streams opened later are told
   * before their first event published during the outage (SSEConnection.sendEvent).
   */
  tellIsland(since: number): void {
    for (const connection of this.connections.values()) connection.noticeIsland(since);
  }

  /** Ends every stream (shutdown): clients reconnect elsewhere and resume. */
  closeAll(reason: CloseReason): void {
    for (const connection of [...this.connections.values()]) connection.close(reason);
  }

  stop(): void {
    clearInterval(this.sweepTimer);
    clearInterval(this.leaseRefresh);
    void this.options.leases?.close();
  }

  private dispatch(subscribers: ReadonlySet<TopicSubscriber>, record: EventRecord): void {
    // Serialized once here, whatever the number of subscribers.
    const frame = trySharedEventFrame(record);
    if (frame === undefined) {
      this.options.logger.warn(
        { eventId: record.id, topic: record.topic },
        'skipped a live event that cannot be serialised',
      );
      return;
    }
    let delivered = 0;
    for (const subscriber of subscribers) {
      // One subscriber failing must not keep the event from the others.
      try {
        if (subscriber.deliver(record, frame) === true) delivered++;
      } catch (error) {
        this.options.logger.warn({ err: error, eventId: record.id }, 'a stream failed to take a live event');
      }
    }
    if (delivered === 0) return;
    this.options.metrics.eventsDelivered.inc(delivered);
    const publishedAt = Date.parse(record.ts);
    this.options.metrics.deliveryLatency.observe(Math.max(0, Date.now() - publishedAt) / 1000);
  }

  /**
   * Heartbeats of the streams whose turn it is (one frame, built once per sweep), token expiries,
   * and held writes that have waited a whole sweep. A stream's heartbeats keep their phase: due
   * times advance by whole intervals.
   */
  private sweep(now: number): void {
    const heartbeatMs = this.options.heartbeatMs;
    let frame: SharedFrame | undefined;
    // Deleting the current entry (a stream that expires here) is safe while iterating a Map.
    for (const connection of this.connections.values()) {
      if (now >= connection.nextHeartbeatAt) {
        frame ??= shareFrame(Buffer.from(controlFrame('heartbeat', { ts: new Date(now).toISOString() })));
        connection.writeShared(frame);
        connection.nextHeartbeatAt += heartbeatMs;
        // After a stall (event loop blocked, machine suspended) do not catch up with a burst.
        if (connection.nextHeartbeatAt <= now) connection.nextHeartbeatAt = now + heartbeatMs;
      }
      connection.checkExpiry(now);
      connection.endLongHold();
    }
  }
}

function increment(map: Map<string, number>, key: string, by: number): void {
  const value = (map.get(key) ?? 0) + by;
  if (value <= 0) map.delete(key);
  else map.set(key, value);
}
