/**
 * Redis bus + hot log: the scaled-out adapter of the EventBus port.
 *
 * Key layout (prefix `is` by default; every key carries the hash tag `{is}`):
 *   {is}:seq            string  highest id issued (the id counter)
 *   {is}:epoch          string  coverage floor of this key set: readers from below it get a gap.
 *                               Created at the first start; if it is missing later, Redis lost its
 *                               data and the next script to run re-creates it (see redis-scripts.ts)
 *   {is}:log:<topic>    stream  the topic's hot log; entry id `<event id>-0`, field `r` = record JSON
 *   {is}:trim           hash    topic -> highest id trimmed from its log (its gap watermark)
 *   {is}:active         zset    topic -> last publish time (ms), for the idle sweep
 *   {is}:idle           zset    topic -> watermark, for topics whose log aged out and was deleted
 *   {is}:dropped        string  watermark of idle topics folded away (bounded memory), a floor for
 *                               every topic Redis no longer knows
 *   {is}:ch:<topic>     pub/sub channel carrying the record JSON
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
 * and replicas only add read capacity and failover. Alternatives, if that ever is the bottleneck:
 * - hash tag per topic (`{is:<topic>}`) + an id counter that is not in the same slot: ids become
 *   (time, shard, seq) tuples ordered per shard only, and a multi-topic resume needs a vector of
 *   positions (an opaque, longer Last-Event-ID);
 * - several independent buses, partitioned by topic family, each with its own id space, when a
 *   connection never spans partitions.
 * Also for Cluster: PUBLISH is broadcast to every node of a cluster; SPUBLISH/SSUBSCRIBE (Redis 7
 * sharded pub/sub) on `{is}:ch:<topic>` would keep it on the shard that owns the slot. This class
 * takes a single-node URL; running on a Cluster needs an ioredis `Cluster` client and SSUBSCRIBE.
 *
 * Operational requirement: Redis must not evict these keys (`maxmemory-policy noeviction` or a
 * `volatile-*` policy; none of these keys has a TTL). Losing individual keys is not a supported
 * failure; losing all of them (restart without persistence, failover to an empty replica) is.
 *
 * Ids never go backwards: every publish passes the highest id this instance has seen as a floor,
 * and a script that finds the epoch missing moves the counter (and the coverage floor) past the old
 * counter, that floor and TIME*1000. Clients holding pre-loss ids get `gapTopics` (so
 * `stream.reset`, the critical events from the store, `complete: false`). The one hole: an id that
 * ran ahead of Redis's clock (a future idFloor, >1000 publishes/ms) and that this instance never
 * saw; at start the store's highest id covers the critical ones.
 *
 * Subscriber blips: each topic remembers the last id it delivered. When the subscriber connection
 * comes back, the bus re-subscribes, holds live messages, re-reads the log after that id, delivers
 * what was missed, then releases the held messages (dropping any id already delivered).
 *
 * Redis unreachable (DESIGN.md, "Redis down"): the command connection is not ready, or the
 * `redis` circuit breaker is open (commands timed out or failed `failureThreshold` times in a
 * row). The bus then fails fast instead of queueing commands, and serves this instance alone:
 * - a non-critical publish gets a local id (max(highest known + 1, now × 1000): still increasing)
 *   and is delivered to this instance's subscribers only, and kept in a bounded LocalFallback;
 * - a critical publish is refused (the publisher answers 503 bus_unavailable): its promise is
 *   "every subscriber on every instance gets it, live or on resume", which an island cannot keep;
 * - reads answer from the LocalFallback, with a gap for anything older than the outage;
 * - new subscriptions are served locally and subscribed in Redis on the way back;
 * - health() says `degraded`.
 * Rejoin, once both connections are ready: every topic re-subscribes and catches up from the log
 * (as after a blip), then the topics published on locally get a gap mark (REJOIN_SCRIPT). Why a
 * mark rather than appending the local events to the log: their ids interleave with ids other
 * instances issued meanwhile, and a stream that is past an id never receives a lower one. So
 * the honest outcome is a `stream.reset {gap}` for every reader from before the rejoin on those
 * topics (their critical events come back from the store; non-critical events published on an
 * island reach only that island's clients), and a gap notice that makes every instance's live
 * streams on those topics resume (`onLiveGap`). A Redis that lost its data (restart without
 * persistence) is the same story through the epoch: every topic reports a live gap.
 *
 * Wedged subscriber: with `probe`, a self-addressed PUBLISH must come back through the
 * subscriber connection (bus-probe.ts); when it does not, health() is `down` (/readyz 503) and the
 * subscriber is reconnected, which re-reads the log from where each topic stood.
 */
import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { nextEventId } from '../events/event-id.js';
import type { ComponentHealth, EventDraft, EventRecord } from '../events/event-record.js';
import {
  CircuitBreaker,
  CircuitOpenError,
  type BreakerState,
  type CircuitBreakerOptions,
} from '../resilience/circuit-breaker.js';
import { withTimeout } from '../resilience/with-timeout.js';
import { BusProbe } from './bus-probe.js';
import type { BusListener, EventBus, HotLogRead, Unsubscribe } from './event-bus.js';
import { LocalFallback } from './local-fallback.js';
import type { HotLogLimits } from './memory-event-bus.js';
import {
  HEAD_SCRIPT,
  PUBLISH_SCRIPT,
  READ_SCRIPT,
  REJOIN_SCRIPT,
  START_SCRIPT,
  SWEEP_SCRIPT,
} from './redis-scripts.js';

/** Where the bus reports what it cannot throw (pino and Fastify loggers fit). */
export interface BusLogger {
  warn(details: object, message: string): void;
}

/** Options of {@link RedisEventBus}. */
export interface RedisEventBusOptions {
  url: string;
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
   * The self-addressed probe (bus-probe.ts): `intervalMs` between probes (0 disables it),
   * `timeoutMs` before an unanswered one means a wedged subscriber (default 2 × intervalMs),
   * `id` names the probe channel (default: random).
   */
  probe?: { intervalMs: number; timeoutMs?: number; id?: string };
}

/** The keys of one deployment (one prefix). */
export interface RedisBusKeys {
  seq: string;
  epoch: string;
  trim: string;
  idle: string;
  active: string;
  dropped: string;
  logPrefix: string;
  channelPrefix: string;
  /** Channels of the self-addressed probes, one per instance (never a topic channel). */
  probePrefix: string;
  /** Matches every key of the prefix (for SCAN). */
  pattern: string;
}

export function redisBusKeys(prefix: string): RedisBusKeys {
  if (!/^[A-Za-z0-9_.:-]+$/.test(prefix)) {
    throw new Error(`invalid Redis key prefix "${prefix}": use letters, digits and _ . : - (no braces)`);
  }
  const tag = `{${prefix}}`;
  return {
    seq: `${tag}:seq`,
    epoch: `${tag}:epoch`,
    trim: `${tag}:trim`,
    idle: `${tag}:idle`,
    active: `${tag}:active`,
    dropped: `${tag}:dropped`,
    logPrefix: `${tag}:log:`,
    channelPrefix: `${tag}:ch:`,
    probePrefix: `${tag}:probe:`,
    pattern: `${tag}:*`,
  };
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
}

interface TopicState {
  topic: string;
  channel: string;
  /** One wrapper per subscription, so the same function subscribed twice counts twice. */
  listeners: Set<BusListener>;
  /** Highest id handed to the listeners: live messages at or below it are duplicates. */
  lastDelivered: number;
  /** SUBSCRIBE acknowledged at least once, or opened while Redis was unreachable. */
  active: boolean;
  /** Opened (or its re-read given up) while Redis was unreachable: rejoin subscribes and re-reads it. */
  needsResync: boolean;
  /** Live messages held back while the log is re-read after a subscriber reconnect. */
  held: EventRecord[] | undefined;
  resyncs: number;
  resyncChain: Promise<void>;
  ready: Promise<void>;
}

const DEFAULT_MAX_IDLE_TOPICS = 50_000;
const SWEEP_BATCH = 500;
const CATCH_UP_ATTEMPTS = 8;
const DEFAULT_COMMAND_TIMEOUT_MS = 3_000;
const DEFAULT_LOCAL_BUFFER_MAX_EVENTS = 10_000;
const GAP_NOTICE_PREFIX = '{"gap":';
const QUIT_TIMEOUT_MS = 1_000;

export class RedisEventBus implements EventBus {
  readonly kind = 'redis' as const;
  private readonly keys: RedisBusKeys;
  private readonly command: ScriptedRedis;
  private readonly subscriber: Redis;
  private readonly topics = new Map<string, TopicState>();
  /** Per channel, the tail of its SUBSCRIBE/UNSUBSCRIBE operations, which must not overtake. */
  private readonly channelOps = new Map<string, Promise<void>>();
  /** Highest id this instance has seen: a floor for the next id even if Redis forgets its counter. */
  private highestKnown = 0;
  private subscriberWasReady = false;
  private started = false;
  private closed = false;
  private lastError: string | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private readonly breaker: CircuitBreaker;
  private readonly commandTimeoutMs: number;
  /** Set while Redis is unreachable and until the rejoin has marked what was delivered locally. */
  private local: LocalFallback | undefined;
  /** Topics whose live gap was already reported during this outage (one resume per topic). */
  private readonly gapReported = new Set<string>();
  private rejoining: Promise<void> | undefined;
  /** Tells this instance's gap notices from other instances'. */
  private readonly busId = randomBytes(8).toString('hex');
  private readonly probe: BusProbe | undefined;
  private readonly probeChannel: string;

  constructor(private readonly options: RedisEventBusOptions) {
    this.keys = redisBusKeys(options.keyPrefix ?? 'is');
    this.commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.breaker = new CircuitBreaker({
      ...options.breaker,
      dependency: 'redis',
      onStateChange: (state: BreakerState, dependency: string) => {
        options.breaker?.onStateChange?.(state, dependency);
        if (state === 'closed') void this.rejoin();
      },
    });
    this.probeChannel = this.keys.probePrefix + (options.probe?.id ?? this.busId);
    const probeInterval = options.probe?.intervalMs ?? 0;
    if (probeInterval > 0) {
      this.probe = new BusProbe({
        intervalMs: probeInterval,
        timeoutMs: options.probe?.timeoutMs ?? 2 * probeInterval,
        send: async (nonce) => {
          void this.rejoin();
          return Number(await this.redisCall(() => this.command.publish(this.probeChannel, nonce)));
        },
        canSend: () => this.started && !this.closed && this.redisUsable,
        onWedged: (detail) => {
          this.options.logger?.warn({ channel: this.probeChannel }, `${detail}; reconnecting the subscriber`);
          // A fresh connection re-subscribes every topic and re-reads the log from where it stood.
          this.subscriber.disconnect(true);
        },
      });
    }
    const name = options.connectionName ?? 'infinitescribe';
    const base: RedisOptions = { maxRetriesPerRequest: 3, ...options.redisOptions, lazyConnect: true };
    this.command = new Redis(options.url, { ...base, connectionName: `${name}:cmd` }) as ScriptedRedis;
    // Re-subscribing is done here, not by ioredis, so the log can be re-read once it is acknowledged.
    this.subscriber = new Redis(options.url, { ...base, connectionName: `${name}:sub`, autoResubscribe: false });
    this.command.defineCommand('isStart', { lua: START_SCRIPT, numberOfKeys: 2 });
    this.command.defineCommand('isPublish', { lua: PUBLISH_SCRIPT, numberOfKeys: 7 });
    this.command.defineCommand('isRead', { lua: READ_SCRIPT });
    this.command.defineCommand('isHead', { lua: HEAD_SCRIPT, numberOfKeys: 2 });
    this.command.defineCommand('isSweep', { lua: SWEEP_SCRIPT, numberOfKeys: 4 });
    this.command.defineCommand('isRejoin', { lua: REJOIN_SCRIPT, numberOfKeys: 6 });
    for (const client of [this.command, this.subscriber]) {
      client.on('error', (error: Error) => {
        this.lastError = error.message;
      });
    }
    // Failed (re)connects count against the breaker, so the gauge shows an unreachable Redis.
    this.command.on('error', (error: Error) => {
      if (this.started && this.command.status !== 'ready') this.breaker.recordFailure(error);
    });
    this.command.on('ready', () => {
      if (!this.started) return;
      this.breaker.recordSuccess();
      void this.rejoin();
    });
    this.subscriber.on('message', (channel: string, message: string) => this.onMessage(channel, message));
    this.subscriber.on('ready', () => this.onSubscriberReady());
  }

  async start(options: { idFloor: number; coveredFrom: number }): Promise<void> {
    try {
      await Promise.all([this.command.connect(), this.subscriber.connect()]);
      const reply = await this.command.isStart(this.keys.seq, this.keys.epoch, options.idFloor, options.coveredFrom);
      const [seq] = stringArray(reply, 'start');
      this.noteId(Math.max(toId(seq), options.idFloor));
      if (this.probe) await this.subscriber.subscribe(this.probeChannel);
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
    const json = JSON.stringify(draft);
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
    );
    const id = toId(reply);
    this.noteId(id);
    return { ...draft, id };
  }

  private publishLocally(draft: EventDraft): EventRecord {
    if (this.closed) throw new Error('the Redis bus is closed');
    if (draft.critical) {
      throw new Error(
        `Redis is unreachable (${this.describeConnections()}): critical events are refused while only local delivery works`,
      );
    }
    const local = this.enterLocal(); // before the id: the fallback vouches from the id known before it
    const record: EventRecord = { ...draft, id: nextEventId(this.highestKnown, Date.now()) };
    this.noteId(record.id);
    local.add(record, true);
    const state = this.topics.get(record.topic);
    if (state) {
      if (state.held) state.held.push(record);
      else this.deliver(state, record);
    }
    this.options.onLocalPublish?.(record);
    return record;
  }

  async subscribe(topic: string, listener: BusListener): Promise<Unsubscribe> {
    if (this.closed) throw new Error('the Redis bus is closed');
    let state = this.topics.get(topic);
    if (!state) state = this.openTopic(topic);
    const own: BusListener = (event) => listener(event);
    state.listeners.add(own);
    try {
      await state.ready;
    } catch (error) {
      state.listeners.delete(own);
      throw error;
    }
    const subscribed = state;
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      subscribed.listeners.delete(own);
      if (subscribed.listeners.size > 0 || this.topics.get(topic) !== subscribed) return;
      this.topics.delete(topic);
      if (this.closed) return;
      await this.enqueue(subscribed.channel, async () => {
        // A newer subscription to the topic queued its SUBSCRIBE after this; leave it be.
        if (this.topics.has(topic)) return;
        await this.subscriber.unsubscribe(subscribed.channel);
      });
    };
  }

  /** Reads the Redis log; while Redis is unreachable, what this instance knows (gaps reported). */
  async read(topics: readonly string[], after: number, limit: number): Promise<HotLogRead> {
    if (this.redisUsable) {
      try {
        return await this.readRedis(topics, after, limit);
      } catch (error) {
        this.options.logger?.warn({ err: error }, 'hot log read failed; answering from this instance alone');
      }
    }
    return this.enterLocal().read(topics, after, limit);
  }

  private async readRedis(topics: readonly string[], after: number, limit: number): Promise<HotLogRead> {
    const unique = [...new Set(topics)];
    const keys = this.keys;
    const count = Math.max(0, Math.floor(limit));
    const reply = await this.redisCall(() =>
      this.command.isRead(
        5 + unique.length,
        keys.seq,
        keys.epoch,
        keys.trim,
        keys.idle,
        keys.dropped,
        ...unique.map((topic) => keys.logPrefix + topic),
        this.highestKnown,
        after,
        count,
        this.options.limits.maxAgeMs,
        ...unique,
      ),
    );
    if (!Array.isArray(reply)) throw new Error('unexpected reply to the read script');
    const head = toId(reply[0]);
    this.noteId(head);
    const gapTopics: string[] = [];
    let events: EventRecord[] = [];
    let oldestId = head;
    unique.forEach((topic, index) => {
      const [coverageRaw, oldestRaw, records] = topicReply(reply[index + 1]);
      const coverage = toId(coverageRaw);
      if (after < coverage) gapTopics.push(topic);
      oldestId = Math.min(oldestId, oldestRaw === '' ? coverage : toId(oldestRaw));
      for (let position = records.length - 1; position >= 0; position--) {
        events.push(parseRecord(records[position] ?? ''));
      }
    });
    events.sort((a, b) => a.id - b.id);
    const truncated = events.length > count;
    if (truncated) events = events.slice(events.length - count);
    return { events, gapTopics, oldestId, truncated };
  }

  /** The Redis counter; while Redis is unreachable, the highest id this instance knows. */
  async headId(): Promise<number> {
    if (this.redisUsable) {
      try {
        const head = toId(
          await this.redisCall(() => this.command.isHead(this.keys.seq, this.keys.epoch, this.highestKnown)),
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
    if (connected && this.local === undefined && this.breaker.state === 'closed') return { status: 'up' };
    const error = this.lastError === undefined ? '' : `; last error: ${this.lastError}`;
    const local = this.local ? `; ${this.local.publishedCount} events delivered locally only` : '';
    const mode = connected ? 're-syncing with Redis' : 'Redis unreachable, local delivery only';
    // Local connections stay open and catch up from the log when Redis returns.
    return { status: 'degraded', detail: `${mode} (${this.describeConnections()})${local}${error}` };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.probe?.stop();
    this.breaker.dispose();
    await this.rejoining;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.topics.clear();
    await this.sweeping;
    await Promise.all([quit(this.command), quit(this.subscriber)]);
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

  private openTopic(topic: string): TopicState {
    const state: TopicState = {
      topic,
      channel: this.keys.channelPrefix + topic,
      listeners: new Set(),
      lastDelivered: 0,
      active: false,
      needsResync: false,
      held: undefined,
      resyncs: 0,
      resyncChain: Promise.resolve(),
      ready: Promise.resolve(),
    };
    this.topics.set(topic, state);
    if (!this.redisUsable || this.subscriber.status !== 'ready') {
      // Redis unreachable: local publishes reach it now; the rejoin subscribes and re-reads the log
      // from the highest id this instance knew.
      this.enterLocal();
      state.lastDelivered = this.highestKnown;
      state.active = true;
      state.needsResync = true;
      return state;
    }
    state.ready = this.enqueue(state.channel, async () => {
      // The counter before SUBSCRIBE: every live message is above it, and a reconnect re-reads from
      // it if nothing was delivered yet.
      state.lastDelivered = toId(await this.redisCall(() => this.command.get(this.keys.seq)), true);
      await this.subscriber.subscribe(state.channel);
      state.active = true;
    });
    state.ready.catch(() => {
      if (this.topics.get(topic) === state) this.topics.delete(topic);
    });
    return state;
  }

  /** Runs `operation` after every earlier SUBSCRIBE/UNSUBSCRIBE of the same channel. */
  private enqueue(channel: string, operation: () => Promise<void>): Promise<void> {
    const previous = this.channelOps.get(channel) ?? Promise.resolve();
    const result = previous.then(operation);
    const tail = result.catch(() => undefined);
    this.channelOps.set(channel, tail);
    void tail.then(() => {
      if (this.channelOps.get(channel) === tail) this.channelOps.delete(channel);
    });
    return result;
  }

  private onMessage(channel: string, message: string): void {
    if (channel === this.probeChannel) return this.probe?.received(message);
    if (!channel.startsWith(this.keys.channelPrefix)) return;
    const state = this.topics.get(channel.slice(this.keys.channelPrefix.length));
    if (!state) return;
    if (message.startsWith(GAP_NOTICE_PREFIX)) return this.onGapNotice(state, message);
    let record: EventRecord;
    try {
      record = parseRecord(message);
    } catch (error) {
      this.options.logger?.warn({ err: error, channel }, 'ignored a malformed bus message');
      return;
    }
    this.local?.add(record, false);
    if (state.held) state.held.push(record);
    else this.deliver(state, record);
  }

  /** Another instance rejoined after delivering locally on this topic: its streams must resume. */
  private onGapNotice(state: TopicState, message: string): void {
    try {
      const notice = JSON.parse(message) as { gap?: unknown; from?: unknown };
      if (notice.from === this.busId || typeof notice.gap !== 'number') return;
      this.noteId(notice.gap);
      this.reportLiveGap(state.topic, 'events were delivered on another instance only, during a Redis outage');
    } catch (error) {
      this.options.logger?.warn({ err: error }, 'ignored a malformed gap notice');
    }
  }

  /** Hands a record to every listener of the topic, once, in id order. */
  private deliver(state: TopicState, record: EventRecord): void {
    if (record.id <= state.lastDelivered || this.topics.get(state.topic) !== state) return;
    state.lastDelivered = record.id;
    this.noteId(record.id);
    for (const listener of state.listeners) {
      try {
        listener(record);
      } catch (error) {
        this.options.logger?.warn({ err: error, topic: state.topic }, 'a bus listener threw');
      }
    }
  }

  private onSubscriberReady(): void {
    if (!this.subscriberWasReady) {
      this.subscriberWasReady = true;
      return;
    }
    if (this.closed) return;
    if (this.probe) {
      this.probe.reset();
      this.subscriber.subscribe(this.probeChannel).catch((error: unknown) => {
        this.options.logger?.warn({ err: error }, 'probe re-subscribe failed');
      });
    }
    for (const state of this.topics.values()) if (state.active) this.resync(state);
    void this.rejoin();
  }

  /** After a subscriber reconnect: re-subscribe, re-read what was missed, then go live again. */
  private resync(state: TopicState): void {
    state.held ??= [];
    state.resyncs++;
    const run = async () => {
      try {
        await this.enqueue(state.channel, async () => {
          if (this.topics.get(state.topic) === state) await this.subscriber.subscribe(state.channel);
        });
        state.needsResync = false;
        await this.catchUp(state);
      } catch (error) {
        state.needsResync = true;
        // The connection dropped again: the next 'ready' queues another resync.
        this.options.logger?.warn({ err: error, topic: state.topic }, 'bus re-subscribe failed');
      } finally {
        state.resyncs--;
        if (state.resyncs === 0) {
          const held = state.held ?? [];
          state.held = undefined;
          for (const record of held) this.deliver(state, record);
        }
      }
    };
    state.resyncChain = state.resyncChain.then(run);
  }

  private async catchUp(state: TopicState): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (this.closed || this.topics.get(state.topic) !== state) return;
      try {
        const read = await this.readRedis([state.topic], state.lastDelivered, this.options.limits.maxEvents);
        if (read.gapTopics.length > 0) {
          this.reportLiveGap(state.topic, 'live events were lost while the bus subscriber was disconnected', {
            after: state.lastDelivered,
            since: read.oldestId,
          });
        }
        for (const record of read.events) this.deliver(state, record);
        return;
      } catch (error) {
        if (attempt >= CATCH_UP_ATTEMPTS) {
          this.options.logger?.warn({ err: error, topic: state.topic }, 'could not re-read the hot log after a blip');
          // Rejoin tries again; meanwhile the streams resume (what they missed may be gone).
          state.needsResync = true;
          this.reportLiveGap(state.topic, 'the hot log could not be re-read after a blip');
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 100 * 2 ** attempt)));
      }
    }
  }

  private noteId(id: number): void {
    if (id > this.highestKnown) this.highestKnown = id;
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
    return this.breaker.run(() =>
      withTimeout(operation(), this.commandTimeoutMs, `no answer from Redis within ${this.commandTimeoutMs} ms`),
    );
  }

  private enterLocal(): LocalFallback {
    if (!this.local) {
      this.local = new LocalFallback(
        this.highestKnown,
        this.options.localBufferMaxEvents ?? DEFAULT_LOCAL_BUFFER_MAX_EVENTS,
      );
      this.options.logger?.warn(
        { connections: this.describeConnections() },
        'Redis is unreachable: delivering on this instance only until it returns',
      );
    }
    return this.local;
  }

  /** Tells a topic's streams to resume; during an outage, once per topic. */
  private reportLiveGap(topic: string, message: string, details: object = {}): void {
    if (this.local) {
      if (this.gapReported.has(topic)) return;
      this.gapReported.add(topic);
    }
    this.options.logger?.warn({ topic, ...details }, message);
    this.options.onLiveGap?.(topic);
  }

  /**
   * The way back from local delivery, once Redis is reachable: every topic re-subscribes and
   * re-reads the log (resync), then the topics published on locally get their gap mark and
   * notice (REJOIN_SCRIPT), and their streams here resume. Single-flight; retried on the next
   * reconnect, breaker close or probe round if it fails.
   */
  private rejoin(): Promise<void> {
    if (this.rejoining || !this.local || this.closed || !this.started) return this.rejoining ?? Promise.resolve();
    if (!this.redisUsable || this.subscriber.status !== 'ready') return Promise.resolve();
    const run = async () => {
      const local = this.local;
      if (!local) return;
      try {
        for (const state of this.topics.values()) if (state.needsResync) this.resync(state);
        await Promise.all([...this.topics.values()].map((state) => state.resyncChain));
        if ([...this.topics.values()].some((state) => state.needsResync)) return;
        const topics = [...local.publishedTopics];
        if (topics.length > 0) {
          const keys = this.keys;
          const mark = await this.redisCall(() =>
            this.command.isRejoin(
              keys.seq,
              keys.epoch,
              keys.trim,
              keys.idle,
              keys.active,
              keys.dropped,
              this.highestKnown,
              this.busId,
              keys.channelPrefix,
              ...topics,
            ),
          );
          this.noteId(toId(mark));
          for (const topic of topics) {
            if (this.topics.has(topic))
              this.reportLiveGap(topic, 'events were delivered locally only during a Redis outage');
          }
        }
        if (this.local === local) {
          this.local = undefined;
          this.gapReported.clear();
          this.options.logger?.warn(
            { publishedLocally: local.publishedCount, topics },
            'Redis is reachable again: re-synced from the log',
          );
        }
      } catch (error) {
        this.options.logger?.warn({ err: error }, 'rejoin after a Redis outage failed; retrying later');
      }
    };
    this.rejoining = run().finally(() => {
      this.rejoining = undefined;
    });
    return this.rejoining;
  }

  private describeConnections(): string {
    return `command connection ${this.command.status}, subscriber ${this.subscriber.status}, breaker ${this.breaker.state}`;
  }
}

async function quit(client: Redis): Promise<void> {
  try {
    // Bounded: a Redis that does not answer must not hold up shutdown.
    if (client.status === 'ready') await withTimeout(client.quit(), QUIT_TIMEOUT_MS, 'QUIT unanswered');
  } catch {
    // Closing anyway.
  } finally {
    client.disconnect();
  }
}

function toId(value: unknown, missingIsZero = false): number {
  if (value === null && missingIsZero) return 0;
  const id = typeof value === 'string' ? Number(value) : value;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
    throw new Error(`unexpected id from Redis: ${String(value)}`);
  }
  return id;
}

function stringArray(value: unknown, script: string): string[] {
  if (!Array.isArray(value)) throw new Error(`unexpected reply to the ${script} script`);
  return value.map((item) => String(item));
}

function topicReply(value: unknown): [string, string, string[]] {
  if (!Array.isArray(value) || value.length !== 3 || !Array.isArray(value[2])) {
    throw new Error('unexpected topic entry in the read reply');
  }
  return [String(value[0]), String(value[1]), value[2].map((record: unknown) => String(record))];
}

function parseRecord(json: string): EventRecord {
  const value: unknown = JSON.parse(json);
  if (
    typeof value !== 'object' ||
    value === null ||
    !('id' in value) ||
    typeof value.id !== 'number' ||
    !('topic' in value) ||
    typeof value.topic !== 'string' ||
    !('type' in value) ||
    typeof value.type !== 'string'
  ) {
    throw new Error('not an event record');
  }
  return value as EventRecord;
}
