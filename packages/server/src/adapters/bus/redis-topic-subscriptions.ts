import type { Redis } from 'ioredis';
import type { EventRecord } from '../../core/event-record.js';
import type { BusListener, BusLogger, HotLogRead, Unsubscribe } from './event-bus.js';
import { parseRecord } from './redis-replies.js';
import { joinTopic, notifyListeners } from './topic-listeners.js';

/**
 * The subscriber side of the Redis bus: one SUBSCRIBE per topic with local listeners
 * (reference-counted), each record handed to them once and in id order, and the catch-up after a
 * subscriber blip.
 *
 * Blips lose nothing: each topic remembers the last id it delivered. When the subscriber
 * connection comes back, every topic re-subscribes, holds live messages, re-reads the log after
 * that id, delivers what was missed, then releases the held messages (dropping any id already
 * delivered). What the log no longer holds is reported as a live gap: the topic's streams resume.
 *
 * While any topic is catching up, every record (of every topic) waits, and all go out in one id
 * order once the last catch-up is done: a stream spans several topics and never takes an id below
 * one it has sent, so a topic whose re-read finished first must not hand out newer events before
 * another topic's older ones (they would be dropped, critical ones included).
 */

/** What {@link TopicSubscriptions} needs from the bus. */
export interface TopicSubscriptionsOptions {
  /**
   * The subscriber connection (ioredis re-subscribes nothing by itself: autoResubscribe off), and
   * how it subscribes: SUBSCRIBE, or SSUBSCRIBE on a Redis Cluster (sharded pub/sub).
   */
  subscriber: Pick<Redis, 'status'>;
  pubsub: PubSub;
  channelPrefix: string;
  logger?: BusLogger;
  /** The highest id this instance has seen, and the way to raise it (ids delivered count). */
  knownId(): number;
  noteId(id: number): void;
  /** Whether Redis takes commands now; when it does not, topics open locally (see the bus). */
  redisUsable(): boolean;
  /** The id counter, read before SUBSCRIBE: every live message of a new subscription is above it. */
  readCounter(): Promise<number>;
  /** Reads one topic's log after `after` (at most the hot log's size). */
  readLog(topic: string, after: number): Promise<HotLogRead>;
  /** A topic opened while Redis is unreachable: the bus serves it locally until the rejoin. */
  onOpenedLocally(): void;
  /** Every record received from Redis, before it is delivered. */
  onReceived(record: EventRecord): void;
  /** A gap notice (a message starting with {@link GAP_NOTICE_PREFIX}) arrived on a topic channel. */
  onGapNotice(topic: string, message: string): void;
  /** What a topic missed cannot be recovered: its streams must resume. */
  reportLiveGap(topic: string, message: string, details?: object): void;
}

/** Subscribing to a channel: classic pub/sub on one Redis, sharded pub/sub on a Cluster. */
export interface PubSub {
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
}

/** Gap notices travel on the topic channels; records (JSON objects with an id first) never start so. */
export const GAP_NOTICE_PREFIX = '{"gap":';

/** Re-reads of the log after a blip before giving up on a topic (its streams then resume). */
const CATCH_UP_ATTEMPTS = 8;

interface TopicState {
  topic: string;
  channel: string;
  /** One wrapper per subscription, so the same function subscribed twice counts twice. */
  listeners: Set<BusListener>;
  /** Highest id handed to the listeners: live messages at or below it are duplicates. */
  lastDelivered: number;
  /** SUBSCRIBE acknowledged at least once, or opened while Redis was unreachable. */
  active: boolean;
  /** Resyncs queued or running for the topic. */
  resyncsQueued: number;
  resyncChain: Promise<void>;
  ready: Promise<void>;
}

export class TopicSubscriptions {
  private readonly topics = new Map<string, TopicState>();
  /** Per channel, the tail of its SUBSCRIBE/UNSUBSCRIBE operations, which must not overtake. */
  private readonly channelOps = new Map<string, Promise<void>>();
  private closed = false;
  /** Catch-ups queued or running; while any is, records wait in {@link heldAll} (see the file comment). */
  private catchingUp = 0;
  private heldAll: { state: TopicState; record: EventRecord }[] = [];
  /** The newest tick that came during a catch-up, told once the held records are out (see deliverTick). */
  private heldTick: { value: number; tell: (value: number) => void } | undefined;
  /**
   * Topics to subscribe and re-read later, by the rejoin or a resync: opened while Redis was
   * unreachable, or their re-subscription or re-read failed. Ticks wait for them (see deliverTick).
   */
  private readonly awaitingResync = new Set<TopicState>();

  constructor(private readonly options: TopicSubscriptionsOptions) {}

  /** Whether a local listener is subscribed to `topic`. */
  has(topic: string): boolean {
    return this.topics.has(topic);
  }

  /** The topics with a local listener. */
  topicNames(): string[] {
    return [...this.topics.keys()];
  }

  /** Live records of `topic` for `listener`; resolves once the subscription is active. */
  subscribe(topic: string, listener: BusListener): Promise<Unsubscribe> {
    const state = this.topics.get(topic) ?? this.openTopic(topic);
    return joinTopic(state, listener, state.ready, async (subscribed) => {
      if (this.topics.get(topic) !== subscribed) return;
      this.topics.delete(topic);
      this.awaitingResync.delete(subscribed);
      this.tellHeldTick();
      if (this.closed) return;
      await this.enqueue(subscribed.channel, async () => {
        // A newer subscription to the topic queued its SUBSCRIBE after this; leave it be.
        if (this.topics.has(topic)) return;
        await this.options.pubsub.unsubscribe(subscribed.channel);
      });
    });
  }

  /** A message on a topic channel (the bus routes its probe channel elsewhere). */
  onMessage(channel: string, message: string): void {
    if (!channel.startsWith(this.options.channelPrefix)) return;
    const state = this.topics.get(channel.slice(this.options.channelPrefix.length));
    if (!state) return;
    if (message.startsWith(GAP_NOTICE_PREFIX)) return this.options.onGapNotice(state.topic, message);
    let record: EventRecord;
    try {
      record = parseRecord(message);
    } catch (error) {
      this.options.logger?.warn({ err: error, channel }, 'ignored a malformed bus message');
      return;
    }
    this.options.onReceived(record);
    // A record on a topic whose re-subscription failed: something re-subscribed it meanwhile (on a
    // Cluster, ioredis replaces a lost sharded subscriber and re-sends its SSUBSCRIBEs, and says so
    // once only, which may have been before this topic's attempt failed). What the topic missed
    // is re-read before this record or anything newer is handed out: handed out first, they would
    // move its streams past the missed ids for good (critical events included). Not during an
    // outage: the rejoin re-reads such topics in its own order.
    if (this.awaitingResync.has(state) && state.resyncsQueued === 0 && this.options.redisUsable()) this.resync(state);
    this.deliver(state, record);
  }

  /** A record published on this instance alone (Redis unreachable): delivered like a received one. */
  deliverLocal(record: EventRecord): void {
    const state = this.topics.get(record.topic);
    if (state) this.deliver(state, record);
  }

  /**
   * A partition's tick (a value its counter reached, every record up to it sent): told now, or,
   * during a catch-up, after the held records, which may be below it and must not be overtaken.
   * Also held while a topic waits for its re-read (opened while Redis was unreachable, or its
   * re-subscription or re-read failed): the tick vouches for records that topic has not received,
   * which the re-read hands out later, below it. Told at once, it would let a merge barrier put
   * streams past them, and they would be dropped for good, critical ones too (the Cluster failover
   * test on three partitions saw it with a barrier that was not waiting for the cut-off partition).
   */
  deliverTick(value: number, tell: (value: number) => void): void {
    if (this.heldTick === undefined || value > this.heldTick.value) this.heldTick = { value, tell };
    // A topic whose re-subscription failed outside an outage may be quiet: no record of its own
    // would start its re-read (onMessage), and the ticks would wait for ever. The tick starts it.
    if (this.awaitingResync.size > 0 && this.options.redisUsable()) {
      for (const state of this.awaitingResync) if (state.resyncsQueued === 0) this.resync(state);
    }
    this.tellHeldTick();
  }

  /** The subscriber connection is back after a drop: every topic re-subscribes and catches up. */
  resubscribeAll(): void {
    for (const state of this.topics.values()) if (state.active) this.resync(state);
  }

  /**
   * For the rejoin after an outage: re-subscribes and re-reads the topics opened (or given up) while
   * Redis was unreachable, waits for every catch-up in progress, and tells whether all are back.
   */
  async resyncPending(): Promise<boolean> {
    for (const state of this.topics.values()) if (this.awaitingResync.has(state)) this.resync(state);
    await Promise.all([...this.topics.values()].map((state) => state.resyncChain));
    return this.awaitingResync.size === 0;
  }

  close(): void {
    this.closed = true;
    this.topics.clear();
    this.awaitingResync.clear();
    this.heldAll = [];
    this.heldTick = undefined;
  }

  /** Tells the held tick once no catch-up runs and no topic waits for the rejoin's re-read. */
  private tellHeldTick(): void {
    if (this.catchingUp > 0 || this.awaitingResync.size > 0) return;
    const tick = this.heldTick;
    this.heldTick = undefined;
    tick?.tell(tick.value);
  }

  private setAwaitingResync(state: TopicState, needed: boolean): void {
    if (needed && this.topics.get(state.topic) === state) this.awaitingResync.add(state);
    else this.awaitingResync.delete(state);
  }

  private openTopic(topic: string): TopicState {
    const state: TopicState = {
      topic,
      channel: this.options.channelPrefix + topic,
      listeners: new Set(),
      lastDelivered: 0,
      active: false,
      resyncsQueued: 0,
      resyncChain: Promise.resolve(),
      ready: Promise.resolve(),
    };
    this.topics.set(topic, state);
    if (!this.options.redisUsable() || this.options.subscriber.status !== 'ready') {
      // Redis unreachable: local publishes reach it now; the rejoin subscribes and re-reads the log
      // from the highest id this instance knew.
      this.options.onOpenedLocally();
      state.lastDelivered = this.options.knownId();
      state.active = true;
      this.setAwaitingResync(state, true);
      return state;
    }
    state.ready = this.enqueue(state.channel, async () => {
      // The counter before SUBSCRIBE: every live message is above it, and a reconnect re-reads from
      // it if nothing was delivered yet.
      state.lastDelivered = await this.options.readCounter();
      await this.options.pubsub.subscribe(state.channel);
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

  /** Hands a record out now, or once every catch-up in progress is done (in one id order). */
  private deliver(state: TopicState, record: EventRecord): void {
    if (this.catchingUp > 0) this.heldAll.push({ state, record });
    else this.handOut(state, record);
  }

  /** Hands a record to every listener of the topic, once, in id order. */
  private handOut(state: TopicState, record: EventRecord): void {
    if (record.id <= state.lastDelivered || this.topics.get(state.topic) !== state) return;
    state.lastDelivered = record.id;
    this.options.noteId(record.id);
    notifyListeners(state.listeners, record, this.options.logger);
  }

  /** After a subscriber reconnect: re-subscribe, re-read what was missed, then go live again. */
  private resync(state: TopicState): void {
    this.catchingUp++;
    state.resyncsQueued++;
    const run = async () => {
      try {
        await this.enqueue(state.channel, async () => {
          if (this.topics.get(state.topic) === state) await this.options.pubsub.subscribe(state.channel);
        });
        this.setAwaitingResync(state, false);
        await this.catchUp(state);
      } catch (error) {
        this.setAwaitingResync(state, true);
        // The connection dropped again: the next 'ready' queues another resync.
        this.options.logger?.warn({ err: error, topic: state.topic }, 'bus re-subscribe failed');
      } finally {
        state.resyncsQueued--;
        // The topic's live records that came meanwhile wait with the re-read ones: released
        // together, sorted, each id once.
        if (--this.catchingUp === 0) {
          const waiting = this.heldAll.sort((a, b) => a.record.id - b.record.id);
          this.heldAll = [];
          for (const { state: topic, record } of waiting) this.handOut(topic, record);
          this.tellHeldTick();
        }
      }
    };
    state.resyncChain = state.resyncChain.then(run);
  }

  private async catchUp(state: TopicState): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (this.closed || this.topics.get(state.topic) !== state) return;
      try {
        const read = await this.options.readLog(state.topic, state.lastDelivered);
        if (read.gapTopics.length > 0) {
          this.options.reportLiveGap(state.topic, 'live events were lost while the bus subscriber was disconnected', {
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
          this.setAwaitingResync(state, true);
          this.options.reportLiveGap(state.topic, 'the hot log could not be re-read after a blip');
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 100 * 2 ** attempt)));
      }
    }
  }
}
