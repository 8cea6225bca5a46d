/**
 * Redis bus + hot log: the scaled-out adapter of the EventBus port. This file holds the adapter
 * itself (connections, breaker, publish, read, health); the rest is split by concept:
 * - redis-bus-keys.ts: the key layout;
 * - redis-scripts.ts: the Lua scripts (id, append, trim, PUBLISH in one step; reads; sweep; rejoin);
 * - redis-topic-subscriptions.ts: SUBSCRIBE per topic, in-order delivery, catch-up after a blip;
 * - redis-outage.ts: local delivery while Redis is unreachable, and the rejoin;
 * - bus-probe.ts: the self-addressed probe that catches a wedged subscriber;
 * - redis-replies.ts: decoding what Redis returns.
 *
 * Publish is one EVALSHA (one round trip): id, XADD, trim, watermark, PUBLISH, atomically. Because
 * PUBLISH happens inside the script, live messages arrive in id order, and a reader that subscribed
 * before reading the log can stitch both by id.
 *
 * Redis Cluster trade-off: the single hash tag puts every key of a deployment in ONE slot, hence on
 * one shard. That is what makes a single Lua script able to assign ids from one counter and append
 * to any topic's log atomically, which gives the one global, strictly increasing id order the
 * protocol promises (one Last-Event-ID resumes a connection spanning many topics). The price: the
 * bus does not shard; its throughput is one Redis primary's (tens of thousands of publishes/s),
 * and replicas only add read capacity and failover. Past that, the bus can be split into
 * partitions, each one of these buses with its own tag and counter residue, under a merge barrier
 * that keeps the one id order (partitioned-event-bus.ts, docs/sharding-the-bus.md).
 * On a Redis Cluster (`url` = `{ clusterNodes }`), the bus uses sharded pub/sub (Redis 7): the
 * scripts SPUBLISH and the subscriber SSUBSCRIBEs, because a classic PUBLISH is broadcast over the
 * cluster bus to every node and stops scaling; `{is}:ch:<topic>` carries the same hash tag as the
 * keys, so a script may SPUBLISH to it, and only the shard that owns the slot carries the traffic.
 * The other shards carry the rest of the deployment's Redis work only when they have other
 * prefixes (several deployments, or buses partitioned by prefix): see docs/scaling.md.
 *
 * Operational requirement: Redis must not evict these keys (`maxmemory-policy noeviction` or a
 * `volatile-*` policy; none of these keys has a TTL). Losing individual keys is not a supported
 * failure; losing all of them (restart without persistence, failover to an empty replica) is.
 *
 * Ids never go backwards: every publish passes the highest id this instance has seen as a floor,
 * and a script that finds the epoch missing moves the counter (and the coverage floor) past the old
 * counter, that floor and TIME*1000. Clients holding pre-loss ids get `gapTopics` (so
 * `stream.reset`, the critical events from the store, `complete: false`). The one hole: an id that
 * ran ahead of Redis's clock (a future idFloor, >10 publishes/ms) and that this instance never
 * saw; at start the store's highest id covers the critical ones. A Redis that lost its data is
 * reported like a blip the log cannot cover: every topic reports a live gap.
 *
 * Failover (Cluster or Sentinel, asynchronous replication): the promoted replica may lack the last
 * writes, yet keep the epoch. Each script is also given the highest id this instance saw Redis
 * issue (`confirmedId`); a counter below it means lost writes, handled as a lost epoch (coverage
 * and counter past every id issued before now), plus a loss notice on `{prefix}:lost` that makes
 * every instance's live streams resume (RedisOutage.onLossNotice): the critical events come back
 * from the store, the rest is told with `stream.reset {gap}`. See docs/scaling.md.
 *
 * Ids are unique cluster-wide, whatever fails: the publish script issues only multiples of
 * ID_SLOTS (residue 0), and an instance serving on its own only ids of the residue it leases
 * (redis-id-slot.ts), so no two issuers ever share an id (event-id.ts).
 *
 * Redis unreachable (docs/runbook.md, "Redis down"): the command connection is not ready, or the
 * `redis` circuit breaker is open (commands timed out or failed `failureThreshold` times in a
 * row). The bus then fails fast instead of queueing commands, serves this instance alone, says
 * `degraded`, and rejoins when Redis is back (redis-outage.ts). New subscriptions are served
 * locally meanwhile and subscribed in Redis on the way back.
 *
 * Wedged subscriber: with `probe`, a self-addressed PUBLISH must come back through the
 * subscriber connection (bus-probe.ts); when it does not, health() is `down` (/readyz 503) and the
 * subscriber is reconnected, which re-reads the log from where each topic stood.
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { Redis, RedisOptions } from 'ioredis';
import { ID_SLOTS, isRedisIssued, MAX_BUS_PARTITIONS } from '../../core/event-id.js';
import type { ComponentHealth, EventDraft, EventRecord } from '../../core/event-record.js';
import {
  CircuitBreaker,
  CircuitOpenError,
  type BreakerState,
  type CircuitBreakerOptions,
} from '../../core/circuit-breaker.js';
import { quitRedis } from '../redis/quit-redis.js';
import { connectRedis, isCluster, isRedisReplyError, type RedisTarget } from '../redis/redis-connection.js';
import { TurnBatch, type BatchOutcome } from '../../core/turn-batch.js';
import { withTimeout } from '../../core/with-timeout.js';
import { BusProbe } from './bus-probe.js';
import {
  BusLayoutError,
  type BusListener,
  type BusLogger,
  type EventBus,
  type HotLogRead,
  type Unsubscribe,
} from './event-bus.js';
import type { HotLogLimits } from './memory-event-bus.js';
import { layoutSlotsKey, redisBusKeys, type RedisBusKeys } from './redis-bus-keys.js';
import { RedisIdSlot } from './redis-id-slot.js';
import { RedisOutage } from './redis-outage.js';
import { draftJson, stringArray, toId, topicLog, type TopicLog } from './redis-replies.js';
import {
  HEAD_SCRIPT,
  PUBLISH_SCRIPT,
  READ_SCRIPT,
  REJOIN_SCRIPT,
  SLOT_SCRIPT,
  START_SCRIPT,
  shardedPubSub,
  SWEEP_SCRIPT,
  TICK_SCRIPT,
} from './redis-scripts.js';
import { type PubSub, TopicSubscriptions } from './redis-topic-subscriptions.js';

export type { BusLogger } from './event-bus.js';
export { redisBusKeys, type RedisBusKeys } from './redis-bus-keys.js';

/** Options of {@link RedisEventBus}. */
export interface RedisEventBusOptions {
  /** One Redis (URL), or a Redis Cluster (`{ clusterNodes }`: sharded pub/sub, see the file comment). */
  url: RedisTarget;
  limits: HotLogLimits;
  /** Key prefix and hash tag; several deployments (or test runs) can share one Redis. Default `is`. */
  keyPrefix?: string;
  /** Base of the Redis client names (`<name>:cmd`, `<name>:sub`), as CLIENT LIST shows them. */
  connectionName?: string;
  /** Extra ioredis options for both connections (timeouts, TLS, retry strategy). */
  redisOptions?: RedisOptions;
  /** Idle topics whose watermark is kept exactly; beyond, they fold into one floor. Default 50 000. */
  maxIdleTopics?: number;
  /** How often the idle sweep runs. Default min(maxAgeMs, 60 s). */
  sweepIntervalMs?: number;
  logger?: BusLogger;
  /**
   * Told when a subscriber reconnect could not recover everything a topic missed (its log was
   * trimmed past the last delivered id, or Redis lost its data), or when an instance that
   * delivered locally during an outage rejoins: the topic's connections should resume.
   */
  onLiveGap?: (topic: string) => void;
  /** The `redis` breaker (default: 3 failures in a row, 5 s cool-down). */
  breaker?: Pick<CircuitBreakerOptions, 'failureThreshold' | 'coolDownMs' | 'onStateChange'>;
  /** Longest wait for one command before it counts as failed (outcome unknown). Default 3 000 ms. */
  commandTimeoutMs?: number;
  /** Events kept for local resumes while Redis is unreachable. Default 10 000. */
  localBufferMaxEvents?: number;
  /** Told of each event delivered locally only, because Redis was unreachable. */
  onLocalPublish?: (event: EventRecord) => void;
  /**
   * Told when this instance starts serving on its own (Redis unreachable), before any event it
   * publishes alone is delivered, with the highest id it knew then: its streams must be told that
   * events may be missing from there on (RedisOutage).
   */
  onIsland?: (since: number) => void;
  /** Lease TTL of this instance's id slot (redis-id-slot.ts). Default 15 minutes. */
  idSlotTtlMs?: number;
  /**
   * The self-addressed probe (bus-probe.ts): `intervalMs` between probes (0 disables it),
   * `timeoutMs` before an unanswered one means a wedged subscriber (default 2 × intervalMs),
   * `id` names the probe channel (default: random).
   */
  probe?: { intervalMs: number; timeoutMs?: number; id?: string };
  /** This bus as one partition of several (partitioned-event-bus.ts); absent, it is the whole bus. */
  partition?: RedisBusPartition;
}

/** What a bus that is one partition of several needs (see {@link RedisEventBusOptions.partition}). */
export interface RedisBusPartition {
  /** Its counter's residue of the id space (event-id.ts): 0…count-1. */
  index: number;
  /** How many partitions there are: the residues below it are Redis's counters, the rest instances'. */
  count: number;
  /** The deployment's key prefix, whose partitions these are (partition-key prefixes derive from it). */
  deploymentPrefix: string;
  /**
   * The id slot this instance uses on its own while Redis is unreachable, leased by another
   * partition: one slot per instance for all partitions, or two instances could issue the same
   * local id on two partitions. Absent, this partition leases it (from the residues above `count`).
   */
  sharedIdSlot?: () => number | undefined;
  /** A tick's value (TICK_SCRIPT), in order with this partition's records: everything up to it has arrived. */
  onTick(value: number): void;
}

type ScriptCall = (...args: (string | number)[]) => Promise<unknown>;

/** The command connection once the scripts are defined on it. */
interface ScriptedRedis extends Redis {
  isStart: ScriptCall;
  isPublish: ScriptCall;
  isRead: ScriptCall;
  isHead: ScriptCall;
  isSweep: ScriptCall;
  isRejoin: ScriptCall;
  isSlot: ScriptCall;
  isTick: ScriptCall;
}

const SWEEP_BATCH = 500;
/**
 * The command connection on a Cluster: ioredis re-sends a command whose connection closed
 * (retryDelayOnFailover) or that met CLUSTERDOWN (retryDelayOnClusterDown), and queues commands
 * while the cluster is not ready: at a failover a publish that already ran on the dying primary
 * would run again under a second id, and one the bus answered 503 (its timeout) would still run
 * later, delivered after the refusal. The bus fails such a command at once instead (unknown
 * outcome: 503; the breaker and the island take over), as autoResendUnfulfilledCommands: false
 * does on one Redis. MOVED and TRYAGAIN are still followed: Redis ran nothing then.
 */
const COMMAND_CLUSTER_OPTIONS = { retryDelayOnFailover: 0, retryDelayOnClusterDown: 0, enableOfflineQueue: false };
/**
 * Most topic reads (a reader's topics, summed over the readers) one read script makes. A script
 * blocks Redis while it runs (every publish of every instance waits), and a topic read returns up
 * to the topic's whole hot log: this bounds a batched script by what one stream of many topics
 * could already ask for alone. More go in another call, sent at once.
 */
const READ_BATCH_TOPICS = 64;
const DEFAULT_MAX_IDLE_TOPICS = 50_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 3_000;
const DEFAULT_LOCAL_BUFFER_MAX_EVENTS = 10_000;

export class RedisEventBus implements EventBus {
  readonly kind = 'redis' as const;
  private readonly keys: RedisBusKeys;
  private readonly command: ScriptedRedis;
  private readonly subscriber: Redis;
  /** SUBSCRIBE, or SSUBSCRIBE on a Cluster. */
  private readonly pubsub: PubSub;
  private readonly sharded: boolean;
  private readonly subscriptions: TopicSubscriptions;
  private readonly outage: RedisOutage;
  /** Highest id this instance has seen: a floor for the next id even if Redis forgets its counter. */
  private highestKnown = 0;
  /**
   * Highest id this instance saw Redis's counter reach (ids Redis issued, counters it read; never
   * an id issued here alone): Redis's counter below it means Redis lost writes (ensure_epoch).
   */
  private confirmedId = 0;
  /** When Redis last answered or sent a message (wall-clock ms). */
  private lastHeardMs = Date.now();
  /**
   * When Redis stopped answering, as far as this instance can tell (wall-clock ms): the command
   * connection closed, or a command sent then got no answer. Cleared by an answer. Local ids go on
   * from there (redis-outage.ts).
   */
  private lostAtMs: number | undefined;
  private subscriberWasReady = false;
  /**
   * The subscriber lost its connection and its topics have not yet been re-subscribed and re-read:
   * a tick arriving now could say "everything up to here has arrived" over records it missed
   * (partition-barrier.ts), so ticks are dropped until then (the barrier asks again).
   */
  private ticksStale = false;
  private started = false;
  private closed = false;
  private lastError: string | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private readonly breaker: CircuitBreaker;
  private readonly commandTimeoutMs: number;
  /** A connection of its own for the start's layout check (refuseOtherLayouts). */
  private readonly layoutConnection: () => Redis;
  /** Tells this instance's gap notices from other instances'. */
  private readonly busId = randomBytes(8).toString('hex');
  private readonly probe: BusProbe | undefined;
  private readonly probeChannel: string;
  /** The residue of the id space this instance may use on its own (redis-id-slot.ts); absent when shared. */
  private readonly idSlot: RedisIdSlot | undefined;
  /** The slot local ids use now (this bus's own lease, or the one it shares). */
  private readonly currentIdSlot: () => number | undefined;
  /** Redis's counters (1, or the partitions) and this bus's counter's residue: event-id.ts. */
  private readonly counters: number;
  private readonly residue: number;
  /** The log reads of one event-loop turn, read with one script call (see readBatch). */
  private readonly reads = new TurnBatch<LogReadRequest, HotLogRead>({
    execute: (requests) => this.readBatch(requests),
    maxWeight: READ_BATCH_TOPICS,
    weigh: (request) => request.topics.length,
    retrySeparately: isRedisReplyError,
  });

  constructor(private readonly options: RedisEventBusOptions) {
    this.keys = redisBusKeys(options.keyPrefix ?? 'is');
    this.commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const name = options.connectionName ?? 'infinitescribe';
    const base: RedisOptions = { maxRetriesPerRequest: 3, ...options.redisOptions, lazyConnect: true };
    this.layoutConnection = () => connectRedis(options.url, { ...base, connectionName: `${name}:layout` });
    // A publish whose connection dropped before its answer has an unknown outcome and fails (the
    // caller answers 503); re-sent after a reconnect, it would go out twice under two ids.
    this.sharded = isCluster(options.url);
    this.command = connectRedis(
      options.url,
      { ...base, connectionName: `${name}:cmd`, autoResendUnfulfilledCommands: false },
      COMMAND_CLUSTER_OPTIONS,
    ) as ScriptedRedis;
    // Re-subscribing is done by TopicSubscriptions, not ioredis, so the log can be re-read once it is acknowledged.
    this.subscriber = connectRedis(
      options.url,
      { ...base, connectionName: `${name}:sub`, autoResubscribe: false },
      { shardedSubscribers: true },
    );
    const subscriber = this.subscriber;
    this.pubsub = this.sharded
      ? {
          subscribe: (channel) => subscriber.ssubscribe(channel),
          unsubscribe: (channel) => subscriber.sunsubscribe(channel),
        }
      : {
          subscribe: (channel) => subscriber.subscribe(channel),
          unsubscribe: (channel) => subscriber.unsubscribe(channel),
        };
    const script = (lua: string) => (this.sharded ? shardedPubSub(lua) : lua);
    this.command.defineCommand('isStart', { lua: START_SCRIPT, numberOfKeys: 2 });
    this.command.defineCommand('isPublish', { lua: script(PUBLISH_SCRIPT), numberOfKeys: 7 });
    this.command.defineCommand('isRead', { lua: script(READ_SCRIPT) });
    this.command.defineCommand('isHead', { lua: script(HEAD_SCRIPT), numberOfKeys: 2 });
    this.command.defineCommand('isSweep', { lua: SWEEP_SCRIPT, numberOfKeys: 5 });
    this.command.defineCommand('isRejoin', { lua: script(REJOIN_SCRIPT), numberOfKeys: 7 });
    this.command.defineCommand('isSlot', { lua: SLOT_SCRIPT, numberOfKeys: 1 });
    this.command.defineCommand('isTick', { lua: script(TICK_SCRIPT), numberOfKeys: 2 });
    this.counters = options.partition?.count ?? 1;
    this.residue = options.partition?.index ?? 0;
    const firstLocalSlot = this.counters;
    const sharedIdSlot = options.partition?.sharedIdSlot;
    this.idSlot = sharedIdSlot
      ? undefined
      : new RedisIdSlot({
          lease: async (preferred, ttlMs) =>
            toId(
              await this.redisCall(() =>
                this.command.isSlot(
                  this.keys.slots,
                  // With the number of partitions: the layout check (refuseOtherLayouts) reads it.
                  `${this.busId}/${options.partition?.count ?? 1}`,
                  ttlMs,
                  preferred,
                  randomInt(ID_SLOTS - firstLocalSlot),
                  firstLocalSlot,
                ),
              ),
            ),
          ttlMs: options.idSlotTtlMs,
          logger: options.logger,
        });
    const ownIdSlot = this.idSlot;
    this.currentIdSlot = sharedIdSlot ?? (() => ownIdSlot?.current());
    const knownId = () => this.highestKnown;
    const noteId = (id: number) => this.noteId(id);
    this.subscriptions = new TopicSubscriptions({
      subscriber: this.subscriber,
      pubsub: this.pubsub,
      channelPrefix: this.keys.channelPrefix,
      logger: options.logger,
      knownId,
      noteId,
      redisUsable: () => this.redisUsable,
      readCounter: async () => {
        // Where a new topic's delivery starts: ids issued here alone must go above it (redis-outage.ts).
        const counter = toId(await this.redisCall(() => this.command.get(this.keys.seq)), true);
        this.noteId(counter);
        return counter;
      },
      readLog: (topic, after) => this.readRedis([topic], after, this.options.limits.maxEvents),
      onOpenedLocally: () => void this.outage.enter(),
      onReceived: (record) => {
        // Every record on a topic channel went through Redis's counter.
        this.noteConfirmed(record.id);
        this.outage.received(record);
      },
      onGapNotice: (topic, message) => this.outage.onGapNotice(topic, message),
      reportLiveGap: (topic, message, details) => this.outage.reportLiveGap(topic, message, details),
    });
    this.outage = new RedisOutage({
      busId: this.busId,
      localBufferMaxEvents: options.localBufferMaxEvents ?? DEFAULT_LOCAL_BUFFER_MAX_EVENTS,
      subscriptions: this.subscriptions,
      logger: options.logger,
      onLiveGap: options.onLiveGap,
      onLocalPublish: options.onLocalPublish,
      onIsland: options.onIsland,
      knownId,
      noteId,
      idSlot: this.currentIdSlot,
      lostAtMs: () => Math.max(this.lostAtMs ?? 0, this.lastHeardMs),
      redisCounters: this.counters,
      canRejoin: () => this.started && !this.closed && this.redisUsable && this.subscriber.status === 'ready',
      markGaps: (topics) => this.markGaps(topics),
      describeConnections: () => this.describeConnections(),
    });
    // The breaker reports its initial state at once: the outage must exist by then.
    this.breaker = new CircuitBreaker({
      ...options.breaker,
      dependency: 'redis',
      onStateChange: (state: BreakerState, dependency: string) => {
        options.breaker?.onStateChange?.(state, dependency);
        if (state === 'closed') void this.outage.rejoin();
        // Redis is surely unreachable: serve alone from now, and say so at once.
        else if (state === 'open' && this.started && !this.closed) this.outage.enter();
      },
    });
    this.probeChannel = this.keys.probePrefix + (options.probe?.id ?? this.busId);
    const probeInterval = options.probe?.intervalMs ?? 0;
    if (probeInterval > 0) {
      this.probe = new BusProbe({
        intervalMs: probeInterval,
        timeoutMs: options.probe?.timeoutMs ?? 2 * probeInterval,
        send: async (nonce) => {
          void this.outage.rejoin();
          const send = () =>
            this.sharded
              ? this.command.spublish(this.probeChannel, nonce)
              : this.command.publish(this.probeChannel, nonce);
          return Number(await this.redisCall(send));
        },
        canSend: () => this.started && !this.closed && this.redisUsable,
        onWedged: (detail) => {
          this.options.logger?.warn({ channel: this.probeChannel }, `${detail}; reconnecting the subscriber`);
          // A fresh connection re-subscribes every topic and re-reads the log from where it stood.
          this.subscriber.disconnect(true);
        },
      });
    }
    for (const client of [this.command, this.subscriber]) {
      client.on('error', (error: Error) => {
        this.lastError = error.message;
      });
    }
    this.command.on('close', () => {
      if (this.started && !this.closed) this.lostAtMs ??= Date.now();
    });
    // Failed (re)connects count against the breaker, so the gauge shows an unreachable Redis.
    this.command.on('error', (error: Error) => {
      if (this.started && this.command.status !== 'ready') this.breaker.recordFailure(error);
    });
    this.command.on('ready', () => {
      if (!this.started) return;
      this.breaker.recordSuccess();
      // At once: a Redis that restarted empty forgot every slot lease.
      void this.idSlot?.renew();
      void this.outage.rejoin();
    });
    this.subscriber.on(this.sharded ? 'smessage' : 'message', (channel: string, message: string) =>
      this.onMessage(channel, message),
    );
    this.subscriber.on('ready', () => this.onSubscriberReady());
    this.subscriber.on('close', () => {
      if (this.started) this.ticksStale = true;
    });
    if (this.sharded) {
      // On a Cluster, ioredis replaces a sharded subscriber whose connection ended ('-node') and
      // re-subscribes its channels itself ('subscribersReady'), but what was published meanwhile
      // never reaches it: every topic re-subscribes (acknowledged after ioredis' own SSUBSCRIBE,
      // on the same connection) and re-reads the log, as after a single node's reconnect.
      let lostSubscriber = false;
      this.subscriber.on('-node', () => {
        lostSubscriber = true;
        if (this.started) this.ticksStale = true;
      });
      this.subscriber.on('subscribersReady', () => {
        if (!lostSubscriber || !this.started || this.closed) return;
        lostSubscriber = false;
        this.onSubscriberReady();
      });
    }
  }

  async start(options: { idFloor: number; coveredFrom: number }): Promise<void> {
    try {
      await Promise.all([this.command.connect(), this.subscriber.connect()]);
      const reply = await this.command.isStart(this.keys.seq, this.keys.epoch, options.idFloor, options.coveredFrom);
      const [seq] = stringArray(reply, 'start');
      this.noteId(Math.max(toId(seq), options.idFloor));
      this.noteConfirmed(toId(seq));
      for (const channel of this.ownChannels()) await this.pubsub.subscribe(channel);
      if (this.idSlot) {
        await this.refuseOtherLayouts();
        await this.idSlot.start();
      }
    } catch (error) {
      this.command.disconnect();
      this.subscriber.disconnect();
      throw error;
    }
    this.started = true;
    const interval = this.options.sweepIntervalMs ?? Math.min(this.options.limits.maxAgeMs, 60_000);
    this.sweepTimer = setInterval(() => void this.sweepIdleTopics(), interval);
    this.sweepTimer.unref();
    this.probe?.start();
  }

  /**
   * Refuses to start beside instances of the same deployment that run its bus with another number
   * of partitions (they would be a second bus under other keys: BusLayoutError). They are known by
   * their id slot leases, taken by every instance at start: a clean stop gives its lease back, a
   * killed instance's runs out within the lease TTL.
   */
  private async refuseOtherLayouts(): Promise<void> {
    const partition = this.options.partition;
    const prefix = partition?.deploymentPrefix ?? this.options.keyPrefix ?? 'is';
    const own = partition?.count ?? 1;
    // Where each layout keeps its leases (several may share one key: partition 0 of 2 and of 3 can
    // have the same prefix), each lease's owner ending in `/<partitions>`.
    const keys = [
      ...new Set(Array.from({ length: MAX_BUS_PARTITIONS }, (_, index) => layoutSlotsKey(prefix, index + 1))),
    ];
    // Not the command connection: on a Cluster it fails a command to a primary it has not
    // connected to yet instead of waiting (COMMAND_CLUSTER_OPTIONS), and these keys are on others.
    const redis = this.layoutConnection();
    const [time, ...leases] = await withTimeout(
      Promise.all([redis.time(), ...keys.map((key) => redis.hvals(key))]),
      this.commandTimeoutMs,
      'no answer from Redis to the bus layout check',
    ).finally(() => quitRedis(redis));
    const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
    const running = new Map<number, number>();
    for (const lease of leases.flat()) {
      const match = /\/(\d+)\|(\d+)$/.exec(lease);
      const count = Number(match?.[1]);
      const until = Number(match?.[2]);
      if (match && count !== own && until > now) running.set(count, Math.max(until, running.get(count) ?? 0));
    }
    if (running.size > 0) {
      const found = [...running].map(
        ([count, until]) => `${count} (an id slot lease until ${new Date(until).toISOString()})`,
      );
      throw new BusLayoutError(
        `REDIS_BUS_PARTITIONS is ${own}, but instances of this deployment (key prefix "${prefix}") run its bus with another number of partitions: ${found.join(', ')}. Two layouts would be two buses, neither getting the other's events. Stop every instance before changing it; a killed instance's lease runs out at the time given.`,
      );
    }
  }

  /**
   * Publishes through Redis, or locally while Redis is unreachable (see the file comment).
   * @throws when Redis failed or timed out (outcome unknown: the event may still be published),
   *   and for a critical event while Redis is unreachable.
   */
  async publish(draft: EventDraft): Promise<EventRecord> {
    if (!(await this.isRedisReachable())) return this.publishLocally(draft);
    try {
      return await this.redisCall(() => this.publishToRedis(draft));
    } catch (error) {
      // Open before the command was sent: nothing reached Redis, so local delivery is safe.
      if (error instanceof CircuitOpenError) return this.publishLocally(draft);
      throw error;
    }
  }

  private async publishToRedis(draft: EventDraft): Promise<EventRecord> {
    const json = draftJson(draft);
    const keys = this.keys;
    const reply = await this.command.isPublish(
      keys.seq,
      keys.epoch,
      keys.logPrefix + draft.topic,
      keys.trim,
      keys.idle,
      keys.active,
      keys.dropped,
      draft.topic,
      this.highestKnown,
      this.options.limits.maxEvents,
      this.options.limits.maxAgeMs,
      json,
      keys.channelPrefix + draft.topic,
      this.confirmedId,
      keys.lostChannel,
      this.residue,
    );
    const id = toId(reply);
    this.noteId(id);
    this.noteConfirmed(id);
    return { ...draft, id };
  }

  private publishLocally(draft: EventDraft): EventRecord {
    if (this.closed) throw new Error('the Redis bus is closed');
    return this.outage.publish(draft);
  }

  async subscribe(topic: string, listener: BusListener): Promise<Unsubscribe> {
    if (this.closed) throw new Error('the Redis bus is closed');
    return this.subscriptions.subscribe(topic, listener);
  }

  /**
   * Reads the Redis log; while Redis is unreachable, what this instance knows (gaps reported).
   * From an id an instance issued alone (not of a Redis counter's residue), every topic is a gap: that
   * id never entered the log, what its island published after it is not there, and the log's
   * events below it (published meanwhile) never reached its reader.
   */
  async read(topics: readonly string[], after: number, limit: number): Promise<HotLogRead> {
    if (this.redisUsable) {
      try {
        const read = await this.readRedis(topics, after, limit);
        return isRedisIssued(after, this.counters) ? read : { ...read, gapTopics: [...new Set(topics)] };
      } catch (error) {
        this.options.logger?.warn({ err: error }, 'hot log read failed; answering from this instance alone');
      }
    }
    return { ...this.outage.enter().read(topics, after, limit), head: this.highestKnown };
  }

  /** Reads the Redis log; the reads of one event-loop turn share one script call (readBatch). */
  private readRedis(topics: readonly string[], after: number, limit: number): Promise<HotLogRead> {
    return this.reads.add({ topics, after, limit });
  }

  /**
   * READ_SCRIPT for the reads of one turn: each topic is read once, from the lowest id its readers
   * stand at, and each entry decoded once; every reader then takes its own events (above its own
   * id) from those, as if it had read alone. When thousands of streams resume at once, this is one
   * round trip, one script and one decode of the same few events per turn instead of one per stream.
   */
  private async readBatch(requests: readonly LogReadRequest[]): Promise<BatchOutcome<HotLogRead>[]> {
    const keys = this.keys;
    const lowest = new Map<string, number>();
    let maxCount = 0;
    for (const request of requests) {
      maxCount = Math.max(maxCount, readCount(request.limit));
      for (const topic of request.topics) {
        const known = lowest.get(topic);
        if (known === undefined || request.after < known) lowest.set(topic, request.after);
      }
    }
    const topics = [...lowest.keys()];
    const reply = await this.redisCall(() =>
      this.command.isRead(
        6 + topics.length,
        keys.seq,
        keys.epoch,
        keys.trim,
        keys.idle,
        keys.dropped,
        keys.gaps,
        ...topics.map((topic) => keys.logPrefix + topic),
        this.highestKnown,
        maxCount,
        this.options.limits.maxAgeMs,
        this.confirmedId,
        keys.lostChannel,
        ...topics.flatMap((topic) => [topic, lowest.get(topic) ?? 0]),
      ),
    );
    if (!Array.isArray(reply)) throw new Error('unexpected reply to the read script');
    const head = toId(reply[0]);
    this.noteId(head);
    // Not `head`: that is raised to the highest id this instance knows, which may be one it
    // issued alone, above ids Redis has not issued yet.
    const liveAbove = toId(reply[1]);
    this.noteConfirmed(liveAbove);
    const logs = new Map<string, TopicLog | { error: unknown }>();
    topics.forEach((topic, index) => {
      try {
        logs.set(topic, topicLog(reply[index + 2]));
      } catch (error) {
        logs.set(topic, { error });
      }
    });
    return requests.map((request) => {
      try {
        return { ok: true, value: readerView(request, logs, head, liveAbove) };
      } catch (error) {
        return { ok: false, error };
      }
    });
  }

  /** The Redis counter; while Redis is unreachable, the highest id this instance knows. */
  async headId(): Promise<number> {
    if (this.redisUsable) {
      try {
        const head = toId(
          await this.redisCall(() =>
            this.command.isHead(
              this.keys.seq,
              this.keys.epoch,
              this.highestKnown,
              this.confirmedId,
              this.keys.lostChannel,
            ),
          ),
        );
        this.noteId(head);
        return head;
      } catch {
        // Answered below: a lower bound of the counter, which is what callers compare against.
      }
    }
    return this.highestKnown;
  }

  async health(): Promise<ComponentHealth> {
    if (this.closed) return { status: 'down', detail: 'closed' };
    if (!this.started) return { status: 'down', detail: 'not started' };
    // Connected but deaf: this instance's streams get nothing, so it must not take traffic.
    const wedged = this.probe?.wedged();
    if (wedged !== undefined) return { status: 'down', detail: wedged };
    const connected = this.redisUsable && this.subscriber.status === 'ready';
    if (connected && !this.outage.active && this.breaker.state === 'closed') return { status: 'up' };
    const local = this.outage.active ? `; ${this.outage.publishedCount} events delivered locally only` : '';
    const mode = connected ? 're-syncing with Redis' : 'Redis unreachable, local delivery only';
    const cause = this.lastError === undefined ? {} : { cause: this.lastError };
    // Local connections stay open and catch up from the log when Redis returns.
    return { status: 'degraded', detail: `${mode} (${this.describeConnections()})${local}`, ...cause };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.probe?.stop();
    this.breaker.dispose();
    await this.outage.settled();
    await this.idSlot?.stop(this.redisUsable);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.subscriptions.close();
    await this.sweeping;
    await Promise.all([quitRedis(this.command), quitRedis(this.subscriber)]);
  }

  /**
   * Trims aged entries of topics idle for maxAgeMs, deletes emptied logs and bounds the number of
   * idle watermarks. Runs on a timer; exposed for tests and operations. Never throws.
   */
  async sweepIdleTopics(): Promise<void> {
    if (this.sweeping || this.closed || this.command.status !== 'ready') return this.sweeping;
    const keys = this.keys;
    const run = async () => {
      try {
        for (;;) {
          const seen = await this.command.isSweep(
            keys.trim,
            keys.idle,
            keys.active,
            keys.dropped,
            keys.gaps,
            keys.logPrefix,
            this.options.limits.maxAgeMs,
            SWEEP_BATCH,
            this.options.maxIdleTopics ?? DEFAULT_MAX_IDLE_TOPICS,
          );
          if (typeof seen !== 'number' || seen < SWEEP_BATCH || this.closed) return;
        }
      } catch (error) {
        this.options.logger?.warn({ err: error }, 'hot log sweep failed; it runs again later');
      }
    };
    this.sweeping = run().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  /**
   * A partition's tick (TICK_SCRIPT): raises the counter to at least `target` and tells every
   * instance its value, after everything the counter issued before. Resolves with the value.
   */
  async tick(target: number): Promise<number> {
    const keys = this.keys;
    const value = toId(
      await this.redisCall(() =>
        this.command.isTick(
          keys.seq,
          keys.epoch,
          this.highestKnown,
          this.confirmedId,
          keys.lostChannel,
          target,
          keys.tickChannel,
        ),
      ),
    );
    this.noteConfirmed(value);
    return value;
  }

  /** An id issued elsewhere (another partition) that this one's next id must be above. */
  observe(id: number): void {
    this.noteId(id);
  }

  /** The id slot local ids use now (see RedisBusPartition.sharedIdSlot). */
  localIdSlot(): number | undefined {
    return this.currentIdSlot();
  }

  /** The bus's own channels (not topics): loss notices, and the probe and ticks when used. */
  private ownChannels(): string[] {
    const channels = [this.keys.lostChannel];
    if (this.probe) channels.push(this.probeChannel);
    if (this.options.partition) channels.push(this.keys.tickChannel);
    return channels;
  }

  private onMessage(channel: string, message: string): void {
    this.lastHeardMs = Date.now();
    if (channel === this.probeChannel) return this.probe?.received(message);
    if (channel === this.keys.tickChannel) {
      const partition = this.options.partition;
      const value = Number(message);
      if (partition && !this.ticksStale && Number.isSafeInteger(value)) {
        // Redis's counter reached it: a counter found below it later means lost writes (ensure_epoch).
        this.noteConfirmed(value);
        this.subscriptions.deliverTick(value, partition.onTick);
      }
      return;
    }
    if (channel === this.keys.lostChannel) {
      const lost = this.outage.onLossNotice(message);
      if (lost !== undefined) this.noteConfirmed(lost);
      return;
    }
    this.subscriptions.onMessage(channel, message);
  }

  private onSubscriberReady(): void {
    if (!this.subscriberWasReady) {
      this.subscriberWasReady = true;
      return;
    }
    if (this.closed) return;
    this.probe?.reset();
    // The loss notices before the topics re-subscribe (same connection, in order): a loss found
    // after a topic's re-read reaches this instance as a notice, one found before it shows in the
    // re-read.
    Promise.all(this.ownChannels().map((channel) => this.pubsub.subscribe(channel))).catch((error: unknown) => {
      this.options.logger?.warn({ err: error }, 'loss notice / probe / tick re-subscribe failed');
    });
    this.subscriptions.resubscribeAll();
    // From here ticks wait behind the re-reads resubscribeAll started (TopicSubscriptions.deliverTick).
    this.ticksStale = false;
    void this.outage.rejoin();
  }

  /** REJOIN_SCRIPT: gap marks on `topics` and a notice to the other instances; the id it marked at. */
  private async markGaps(topics: readonly string[]): Promise<number> {
    const keys = this.keys;
    const mark = await this.redisCall(() =>
      this.command.isRejoin(
        keys.seq,
        keys.epoch,
        keys.trim,
        keys.idle,
        keys.active,
        keys.dropped,
        keys.gaps,
        this.highestKnown,
        this.busId,
        keys.channelPrefix,
        this.confirmedId,
        keys.lostChannel,
        ...topics,
      ),
    );
    this.noteConfirmed(toId(mark));
    return toId(mark);
  }

  private noteId(id: number): void {
    if (id > this.highestKnown) this.highestKnown = id;
  }

  private noteConfirmed(id: number): void {
    if (id > this.confirmedId) this.confirmedId = id;
  }

  /** Whether commands may go to Redis now: connected, and the breaker lets calls through. */
  private get redisUsable(): boolean {
    return this.command.status === 'ready' && this.breaker.isCallPermitted;
  }

  /**
   * Whether to try Redis now. While the breaker is half-open the trial is a PING, not the
   * caller's publish, so a Redis still wedged costs a fallback rather than a failed publish.
   */
  private async isRedisReachable(): Promise<boolean> {
    if (!this.redisUsable) return false;
    if (this.breaker.state === 'closed') return true;
    try {
      await this.redisCall(() => this.command.ping());
      return true;
    } catch {
      return false;
    }
  }

  /** One command through the breaker, bounded by the command timeout. */
  private redisCall<T>(operation: () => Promise<T>): Promise<T> {
    return this.breaker.run(async () => {
      const sentAt = Date.now();
      try {
        const result = await withTimeout(
          operation(),
          this.commandTimeoutMs,
          `no answer from Redis within ${this.commandTimeoutMs} ms`,
        );
        this.lastHeardMs = Date.now();
        this.lostAtMs = undefined;
        return result;
      } catch (error) {
        if (!isRedisReplyError(error)) this.lostAtMs ??= sentAt;
        throw error;
      }
    });
  }

  private describeConnections(): string {
    return `command connection ${this.command.status}, subscriber ${this.subscriber.status}, breaker ${this.breaker.state}`;
  }
}

/** One reader's request to the batched read. */
interface LogReadRequest {
  topics: readonly string[];
  after: number;
  limit: number;
}

function readCount(limit: number): number {
  return Math.max(0, Math.floor(limit));
}

/**
 * What `request` would have read alone, taken from its batch's topic logs: per topic, the newest
 * `count + 1` entries above its id (the first entries of the topic's log, newest first; an entry
 * that cannot be decoded is left out and counted), merged by id and cut to the newest `count`.
 */
function readerView(
  request: LogReadRequest,
  logs: ReadonlyMap<string, TopicLog | { error: unknown }>,
  head: number,
  liveAbove: number,
): HotLogRead {
  const count = readCount(request.limit);
  const gapTopics: string[] = [];
  let events: EventRecord[] = [];
  let oldestId = head;
  let unreadable = 0;
  for (const topic of new Set(request.topics)) {
    const log = logs.get(topic);
    if (log === undefined) throw new Error(`the read reply has no entry for topic ${topic}`);
    if ('error' in log) throw log.error;
    if (request.after < log.coverage) gapTopics.push(topic);
    oldestId = Math.min(oldestId, log.oldest ?? log.coverage);
    const mine: EventRecord[] = [];
    for (let taken = 0; taken <= count && taken < log.entries.length; taken++) {
      const entry = log.entries[taken];
      if (entry === undefined || entry.id <= request.after) break;
      if (entry.record === undefined) unreadable++;
      else mine.push(entry.record);
    }
    events = events.concat(mine.reverse());
  }
  events.sort((a, b) => a.id - b.id);
  const truncated = events.length > count;
  if (truncated) events = events.slice(events.length - count);
  return { events, gapTopics, oldestId, truncated, liveAbove, head, ...(unreadable > 0 ? { unreadable } : {}) };
}
