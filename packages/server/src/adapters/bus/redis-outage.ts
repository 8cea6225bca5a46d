import { nextEventIdInSlot } from '../../core/event-id.js';
import type { EventDraft, EventRecord } from '../../core/event-record.js';
import { PublishRefusedError, type BusLogger } from './event-bus.js';
import { LocalFallback } from './local-fallback.js';
import type { TopicSubscriptions } from './redis-topic-subscriptions.js';

/**
 * The Redis bus while Redis is unreachable, and its way back (docs/runbook.md, "Redis down").
 *
 * While Redis is unreachable the instance is an island: a non-critical publish gets a local id
 * (below) and reaches this instance's subscribers only, kept in a bounded LocalFallback that
 * answers reads (with a gap for anything older than the outage); without an id slot it is
 * refused, and so is a critical publish, since its promise ("every subscriber on every instance
 * gets it, live or on resume") is one an island cannot keep. Once something comes through Redis
 * again before this instance has re-synced (another instance's event, a gap or loss notice: a
 * failover promoted a replica, the others reached it first; or a reader resuming from an event
 * Redis issued since, LocalFallback.read), local publishes are refused too: Redis takes the other
 * instances' events again, critical ones included, and a local id could pass over one of them on
 * this instance's streams for good (a stream never takes a lower id).
 *
 * A local id is the next id of this instance's slot residue (so never one another instance
 * issues: redis-id-slot.ts) above the highest id it knows and above the moment Redis became
 * unreachable × 1000, as far as this instance can tell (its command connection closed, or a command
 * sent then got no answer); not above the clock. That moment's ids are what every stream of the
 * cluster had at most, so the others' streams do not pass over a local id before it is published
 * (they learn of it at the rejoin). And Redis may serve the other instances again without this one
 * knowing (it came back and they reconnected first): their events take ids from Redis's clock, so
 * a local id taken from the clock a moment later would pass over them on this instance's streams
 * for good, critical ones included. From the outage's start, local ids stay below them (unless this
 * island publishes more than 10 events per millisecond since), and the rejoin's re-read brings them
 * to its streams in order. What Redis issued between its last answer here and that moment (a
 * network that silently drops packets is found out only by a command's time-out) can still be passed
 * over. A slot's earlier holder issued its ids before its lease ran out, so before this instance
 * heard Redis grant it the slot: below.
 *
 * Rejoin, once both connections are ready: every topic re-subscribes and catches up from the log
 * (as after a blip), then the topics published on locally get a gap mark (REJOIN_SCRIPT). Why a
 * mark rather than appending the local events to the log: their ids interleave with ids other
 * instances issued meanwhile, and a stream that is past an id never receives a lower one. So the
 * honest outcome is a `stream.reset {gap}` for every reader from before the rejoin on those
 * topics (their critical events come back from the store; non-critical events published on an
 * island reach only that island's clients), and a gap notice that makes every instance's live
 * streams on those topics resume (`onLiveGap`). The mark hides nothing the log holds: events
 * published in Redis before it (this instance publishes there again as soon as Redis answers,
 * before its rejoin has run) are still replayed to those readers, as the store may not show a
 * critical one yet.
 */

/** What {@link RedisOutage} needs from the bus. */
export interface RedisOutageOptions {
  /** Tells this instance's gap notices from other instances'. */
  busId: string;
  localBufferMaxEvents: number;
  subscriptions: TopicSubscriptions;
  logger?: BusLogger;
  /** A topic's streams should resume (see RedisEventBusOptions.onLiveGap). */
  onLiveGap?: (topic: string) => void;
  /** Told of each event delivered locally only. */
  onLocalPublish?: (event: EventRecord) => void;
  /** Told when this instance starts serving on its own, with the highest id it knew then. */
  onIsland?: (since: number) => void;
  knownId(): number;
  noteId(id: number): void;
  /** This instance's id slot, while its lease is surely valid (redis-id-slot.ts). */
  idSlot(): number | undefined;
  /** When Redis became unreachable, as far as this instance can tell (wall-clock ms). */
  lostAtMs(): number;
  /** Redis's counters (residues 0…redisCounters-1; see event-id.ts). Default 1. */
  redisCounters?: number;
  /** Started, not closed, and both connections usable: a rejoin can be tried now. */
  canRejoin(): boolean;
  /** Marks `topics` as gaps in Redis and tells the other instances; resolves with the id it marked at. */
  markGaps(topics: readonly string[]): Promise<number>;
  /** The connections' state, for log lines and errors. */
  describeConnections(): string;
}

export class RedisOutage {
  /** Set while Redis is unreachable and until the rejoin has marked what was delivered locally. */
  private local: LocalFallback | undefined;
  /** Topics whose live gap was already reported during this outage (one resume per topic). */
  private readonly gapReported = new Set<string>();
  private rejoining: Promise<void> | undefined;

  constructor(private readonly options: RedisOutageOptions) {}

  /** Whether the bus is (still) serving on its own. */
  get active(): boolean {
    return this.local !== undefined;
  }

  /** Events published here while Redis was unreachable, in this outage. */
  get publishedCount(): number {
    return this.local?.publishedCount ?? 0;
  }

  /** Starts serving on this instance alone (idempotent). */
  enter(): LocalFallback {
    if (!this.local) {
      // From the id known before the outage: that is where what this island knows begins.
      this.local = new LocalFallback(
        this.options.knownId(),
        this.options.localBufferMaxEvents,
        this.options.redisCounters,
      );
      this.options.logger?.warn(
        { connections: this.options.describeConnections() },
        'Redis is unreachable: delivering on this instance only until it returns',
      );
      // Before any local id goes out: from here on this instance's ids can pass over other
      // instances' events its streams will not get, and each stream must be told first.
      this.options.onIsland?.(this.local.since);
    }
    return this.local;
  }

  /**
   * Publishes on this instance alone.
   * @throws for a critical event.
   */
  publish(draft: EventDraft): EventRecord {
    if (draft.critical) {
      throw new PublishRefusedError(
        `Redis is unreachable (${this.options.describeConnections()}): critical events are refused while only local delivery works`,
      );
    }
    // A local id could pass over the others' events on this instance's streams, for good.
    if (this.local?.redisServesOthers) {
      throw new PublishRefusedError(
        `Redis serves the other instances again and this one has not re-synced yet (${this.options.describeConnections()}): an id issued here could pass over their events`,
      );
    }
    const slot = this.options.idSlot();
    if (slot === undefined) {
      throw new PublishRefusedError(
        'Redis is unreachable and this instance holds no id slot (none was free, or its lease may have run out): an id issued here could be issued elsewhere too',
      );
    }
    const local = this.enter(); // before the id: the fallback vouches from the id known before it
    const record: EventRecord = {
      ...draft,
      id: nextEventIdInSlot(this.options.knownId(), this.options.lostAtMs(), slot),
      island: local.since,
    };
    this.options.noteId(record.id);
    local.add(record, true);
    this.options.subscriptions.deliverLocal(record);
    this.options.onLocalPublish?.(record);
    return record;
  }

  /** Keeps a record received from Redis for local resumes, while the outage lasts. */
  received(record: EventRecord): void {
    this.local?.add(record, false);
  }

  /** Tells a topic's streams to resume; during an outage, once per topic. */
  reportLiveGap(topic: string, message: string, details: object = {}): void {
    if (this.local) {
      if (this.gapReported.has(topic)) return;
      this.gapReported.add(topic);
    }
    this.options.logger?.warn({ topic, ...details }, message);
    this.options.onLiveGap?.(topic);
  }

  /** Another instance rejoined after delivering locally on this topic: its streams must resume. */
  onGapNotice(topic: string, message: string): void {
    try {
      const notice = JSON.parse(message) as { gap?: unknown; from?: unknown };
      if (notice.from === this.options.busId || typeof notice.gap !== 'number') return;
      this.local?.heardRedisServe();
      this.options.noteId(notice.gap);
      this.reportLiveGap(topic, 'events were delivered on another instance only, during a Redis outage');
    } catch (error) {
      this.options.logger?.warn({ err: error }, 'ignored a malformed gap notice');
    }
  }

  /**
   * A loss notice (`{"lost":<coverage>}`, redis-scripts.ts ensure_epoch): Redis lost writes (its
   * data, or its latest writes at a failover to a replica that had not received them), and every
   * id below the coverage now resumes with a gap. Any topic's live streams may have missed some of
   * what was lost (published elsewhere, never received here), so each resumes, as after an outage:
   * the store gives back the critical events, the resume says `complete: false`. Resolves with
   * the coverage, or undefined for a malformed notice.
   */
  onLossNotice(message: string): number | undefined {
    let lost: unknown;
    try {
      lost = (JSON.parse(message) as { lost?: unknown }).lost;
    } catch {
      // Reported below.
    }
    if (typeof lost !== 'number') {
      this.options.logger?.warn({ message }, 'ignored a malformed loss notice');
      return undefined;
    }
    this.options.noteId(lost);
    this.local?.heardRedisServe();
    for (const topic of this.options.subscriptions.topicNames()) {
      this.reportLiveGap(
        topic,
        'Redis lost acknowledged writes (restarted empty, or failed over to a replica behind it)',
        {
          coveredFrom: lost,
        },
      );
    }
    return lost;
  }

  /**
   * The way back from local delivery, once Redis is reachable: every topic re-subscribes and
   * re-reads the log, then the topics published on locally get their gap mark and notice, and
   * their streams here resume. Single-flight; retried on the next reconnect, breaker close or
   * probe round if it fails.
   */
  rejoin(): Promise<void> {
    if (this.rejoining || !this.local) return this.rejoining ?? Promise.resolve();
    if (!this.options.canRejoin()) return Promise.resolve();
    const run = async () => {
      const local = this.local;
      if (!local) return;
      try {
        if (!(await this.options.subscriptions.resyncPending())) return;
        const topics = [...local.publishedTopics];
        if (topics.length > 0) {
          this.options.noteId(await this.options.markGaps(topics));
          // Said again even where the outage already reported a gap (a loss notice, a failed
          // re-read): the local events published since then may have passed over events the log
          // holds, which those streams have not been told of.
          this.gapReported.clear();
          for (const topic of topics) {
            if (this.options.subscriptions.has(topic))
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

  /** Resolves once a rejoin in progress has ended (for close). */
  async settled(): Promise<void> {
    await this.rejoining;
  }
}
