/**
 * One deployment's bus split into partitions, so that a Redis Cluster spreads it over its primaries
 * (docs/sharding-the-bus.md). Each partition is a whole single-slot Redis bus (redis-event-bus.ts)
 * with its own hash tag, counter, hot logs and failure handling; a topic belongs to one partition
 * (a hash of its name), and its publish is that partition's one EVALSHA, as before.
 *
 * What spans partitions is here:
 * - ids: partition k's counter issues only ids of residue k (event-id.ts), so two partitions never
 *   issue the same id; every publish takes the highest id this instance knows as a floor, so an
 *   instance's own publishes keep their order across partitions;
 * - live order: the partitions' events reach this instance each in its own counter's order, and the
 *   merge barrier (partition-barrier.ts) hands them to the listeners in one id order, asking a
 *   lagging partition for a tick (TICK_SCRIPT) when it must;
 * - reads and the head: first every partition involved is ticked to the highest of their counters
 *   (T), then read. After its tick a partition issues only ids above T and its log holds every id at
 *   or below it, so a read answers every event up to T and `liveAbove: T`, and a subscriber gets
 *   the rest live: the seam of one bus, at two more round trips;
 * - outages: a partition that cannot be reached is still waited for, so the other partitions'
 *   events wait with it. Released meanwhile, they would put streams past its ids, and its events
 *   that come back afterwards (critical ones too) would be dropped for good (the Cluster failover
 *   test saw it). A Cluster that requires full slot coverage (the default) refuses every slot during
 *   a failover anyway. What an instance publishes alone meanwhile takes its place in the same order.
 *
 * Partitions' tags are chosen so that partition k's slot falls in the k-th of `count` equal ranges
 * of the 16,384 slots: a Cluster created with equal ranges per primary gets an equal share of them.
 */
import { MAX_BUS_PARTITIONS } from '../../core/event-id.js';
import type { ComponentHealth, EventDraft, EventRecord } from '../../core/event-record.js';
import type { BusListener, EventBus, HotLogRead, Unsubscribe } from './event-bus.js';
import { TurnBatch } from '../../core/turn-batch.js';
import { PartitionBarrier } from './partition-barrier.js';
import { joinTopic, notifyListeners, type TopicListenerGroup } from './topic-listeners.js';
import { RedisEventBus, type RedisEventBusOptions } from './redis-event-bus.js';
import { partitionKeyPrefix } from './redis-bus-keys.js';
import { hashString } from '../../core/seeded-random.js';

/** Options of {@link PartitionedEventBus}: a Redis bus's, and how many partitions. */
export interface PartitionedEventBusOptions extends Omit<RedisEventBusOptions, 'partition'> {
  /** 2…{@link MAX_BUS_PARTITIONS}. Changing it moves topics between partitions (see the doc). */
  partitions: number;
}

/** The partition a topic belongs to. */
export function topicPartition(topic: string, count: number): number {
  return hashString(topic) % count;
}

/** What one caller of tickAll learns. */
interface TickRound {
  target: number;
  unticked: number[];
  floor: number | undefined;
}

/** One round of ticks for every caller of a turn. */
interface SharedTickRound {
  target: number;
  heads: Map<number, number>;
  unticked: Set<number>;
}

interface TopicListeners extends TopicListenerGroup {
  /** The partition's subscription (one per topic, whatever the number of local listeners). */
  subscribed: Promise<Unsubscribe>;
}

export class PartitionedEventBus implements EventBus {
  readonly kind = 'redis' as const;
  private readonly parts: RedisEventBus[];
  private readonly barrier: PartitionBarrier<EventRecord>;
  private readonly topics = new Map<string, TopicListeners>();
  private highestKnown = 0;
  /** Partitions whose last tick failed (logged once until one succeeds). */
  private readonly failingTicks = new Set<number>();
  private readonly tickRounds = new TurnBatch<readonly number[], SharedTickRound>({
    execute: async (requests) => {
      const round = await this.tickRound([...new Set(requests.flat())]);
      return requests.map(() => ({ ok: true, value: round }));
    },
  });

  constructor(private readonly options: PartitionedEventBusOptions) {
    const count = options.partitions;
    if (!Number.isInteger(count) || count < 2 || count > MAX_BUS_PARTITIONS) {
      throw new Error(`a partitioned bus takes 2 to ${MAX_BUS_PARTITIONS} partitions, not ${count}`);
    }
    const prefix = options.keyPrefix ?? 'is';
    const name = options.connectionName ?? 'infinitescribe';
    this.barrier = new PartitionBarrier<EventRecord>({
      release: (event) => this.handOut(event),
      requestTick: (partition, target) => {
        this.parts[partition]?.tick(target).then(
          () => this.failingTicks.delete(partition),
          (error: unknown) => {
            // The barrier asks again after its timeout; meanwhile the events wait. Said once per streak.
            if (this.failingTicks.has(partition)) return;
            this.failingTicks.add(partition);
            options.logger?.warn({ err: error, partition }, 'a bus partition did not answer a tick; its events wait');
          },
        );
      },
      onRegression: (partition, event) => {
        options.logger?.warn(
          { partition, id: event.id, topic: event.topic },
          'a bus partition sent an id below one it had passed (lost writes?); its streams resume',
        );
        options.onLiveGap?.(event.topic);
      },
    });
    this.parts = Array.from(
      { length: count },
      (_, index) =>
        new RedisEventBus({
          ...options,
          keyPrefix: partitionKeyPrefix(prefix, index, count),
          connectionName: `${name}:p${index}`,
          partition: {
            index,
            count,
            deploymentPrefix: prefix,
            sharedIdSlot: index === 0 ? undefined : () => this.parts[0]?.localIdSlot(),
            onTick: (value) => this.barrier.advance(index, value),
          },
        }),
    );
  }

  async start(options: { idFloor: number; coveredFrom: number }): Promise<void> {
    // Partition 0 first: it leases the instance's local id slot that the others share.
    const [first, ...rest] = this.parts as [RedisEventBus, ...RedisEventBus[]];
    await first.start(options);
    await Promise.all(rest.map((part) => part.start(options)));
    const heads = await Promise.all(this.parts.map((part) => part.headId()));
    heads.forEach((head, index) => {
      this.noteId(head);
      // Every event of the partition that reaches here from now on is above its counter now.
      this.barrier.wait(index, head);
    });
  }

  async publish(draft: EventDraft): Promise<EventRecord> {
    const part = this.partOf(draft.topic);
    part.observe(this.highestKnown);
    const record = await part.publish(draft);
    this.noteId(record.id);
    return record;
  }

  subscribe(topic: string, listener: BusListener): Promise<Unsubscribe> {
    const entry = this.topics.get(topic) ?? this.openTopic(topic);
    return joinTopic(entry, listener, entry.subscribed, async (subscribed) => {
      if (this.topics.get(topic) !== subscribed) return;
      this.topics.delete(topic);
      await (
        await subscribed.subscribed
      )();
    });
  }

  /** One subscription of the topic's partition for all of this bus's listeners of it. */
  private openTopic(topic: string): TopicListeners {
    const partition = topicPartition(topic, this.parts.length);
    const entry: TopicListeners = {
      listeners: new Set(),
      // An event published alone while Redis was unreachable carries `island`: its id is from an
      // instance's own residue, not the partition's counter, so it waits its turn in the one id
      // order (handed out at once, it would put streams past older events still waiting, critical
      // ones too) but does not move the partition's watermark.
      subscribed: (this.parts[partition] as RedisEventBus).subscribe(topic, (event) =>
        event.island === undefined ? this.barrier.receive(partition, event) : this.barrier.hold(event),
      ),
    };
    entry.subscribed.catch(() => {
      if (this.topics.get(topic) === entry) this.topics.delete(topic);
    });
    this.topics.set(topic, entry);
    return entry;
  }

  async read(topics: readonly string[], after: number, limit: number): Promise<HotLogRead> {
    const byPartition = this.group(topics);
    const { target, unticked } = await this.tickAll([...byPartition.keys()]);
    const reads = await Promise.all(
      [...byPartition].map(([partition, own]) => (this.parts[partition] as RedisEventBus).read(own, after, limit)),
    );
    let events: EventRecord[] = [];
    const gapTopics: string[] = [];
    let oldestId = target;
    let truncated = false;
    let unreadable = 0;
    let liveAbove: number | undefined = target;
    // A partition not ticked may still issue ids at or below the target, which streams past it
    // would drop: its topics are reported as gaps (stream.reset, the store), never silently.
    for (const partition of unticked) gapTopics.push(...(byPartition.get(partition) ?? []));
    for (const read of reads) {
      // Above the target: issued after the tick, so it reaches the reader live.
      for (const event of read.events) if (event.id <= target) events.push(event);
      gapTopics.push(...read.gapTopics);
      oldestId = Math.min(oldestId, read.oldestId);
      truncated ||= read.truncated;
      unreadable += read.unreadable ?? 0;
      // A partition answering from this instance alone cannot promise the seam.
      if (read.liveAbove === undefined) liveAbove = undefined;
    }
    events.sort((a, b) => a.id - b.id);
    if (events.length > limit) {
      events = events.slice(events.length - limit);
      truncated = true;
    }
    return {
      events,
      gapTopics: [...new Set(gapTopics)],
      oldestId,
      truncated,
      head: target,
      ...(liveAbove === undefined ? {} : { liveAbove }),
      ...(unreadable > 0 ? { unreadable } : {}),
    };
  }

  /**
   * The highest of the partitions' counters, every partition ticked to it: any id issued later is
   * above. If one could not be ticked, its own counter (lower), which is what callers need: a
   * bound that no later id is at or below.
   */
  async headId(): Promise<number> {
    const { target, floor } = await this.tickAll(this.parts.map((_, index) => index));
    return floor ?? target;
  }

  async health(): Promise<ComponentHealth> {
    const healths = await Promise.all(this.parts.map((part) => part.health()));
    const rank = { up: 0, degraded: 1, down: 2 } as const;
    const worst = healths.reduce((a, b) => (rank[b.status] > rank[a.status] ? b : a));
    if (worst.status === 'up') return worst;
    const details = healths
      .map((health, index) =>
        health.status === 'up' ? undefined : `partition ${index}: ${health.detail ?? health.status}`,
      )
      .filter((detail) => detail !== undefined);
    return { ...worst, detail: details.join('; ') };
  }

  async close(): Promise<void> {
    this.barrier.close();
    this.topics.clear();
    await Promise.all(this.parts.map((part) => part.close()));
  }

  /** Each partition's hot-log sweep (see RedisEventBus.sweepIdleTopics). */
  async sweepIdleTopics(): Promise<void> {
    await Promise.all(this.parts.map((part) => part.sweepIdleTopics()));
  }

  private partOf(topic: string): RedisEventBus {
    return this.parts[topicPartition(topic, this.parts.length)] as RedisEventBus;
  }

  private group(topics: readonly string[]): Map<number, string[]> {
    const byPartition = new Map<number, string[]>();
    for (const topic of new Set(topics)) {
      const partition = topicPartition(topic, this.parts.length);
      const list = byPartition.get(partition);
      if (list) list.push(topic);
      else byPartition.set(partition, [topic]);
    }
    return byPartition;
  }

  /**
   * Reads the counters of `partitions` and raises each to the highest (`target`): from then on each
   * issues only ids above it. A partition that cannot be reached answers with what this instance
   * knows, and one whose tick fails is `unticked`; `floor` is then the lowest of their counters
   * (no later id of theirs is at or below it). The calls of one event-loop turn share one round
   * (a reconnect storm resumes thousands of streams at once), over the partitions they name together.
   */
  private async tickAll(partitions: readonly number[]): Promise<TickRound> {
    const round = await this.tickRounds.add(partitions);
    const unticked = partitions.filter((index) => round.unticked.has(index));
    const floors = unticked.map((index) => round.heads.get(index) ?? 0);
    return { target: round.target, unticked, floor: floors.length > 0 ? Math.min(...floors) : undefined };
  }

  private async tickRound(partitions: readonly number[]): Promise<SharedTickRound> {
    const heads = new Map<number, number>();
    await Promise.all(
      partitions.map(async (index) => heads.set(index, await (this.parts[index] as RedisEventBus).headId())),
    );
    const target = Math.max(this.highestKnown, ...heads.values());
    const unticked = new Set<number>();
    // Every one, the highest included: a partition's head is raised to the highest id its bus has
    // seen, which may be above its counter (a publish that failed after taking its floor).
    await Promise.all(
      partitions.map(async (index) => {
        try {
          await (this.parts[index] as RedisEventBus).tick(target);
        } catch {
          unticked.add(index);
        }
      }),
    );
    this.noteId(target);
    return { target, heads, unticked };
  }

  private handOut(event: EventRecord): void {
    this.noteId(event.id);
    const entry = this.topics.get(event.topic);
    if (entry !== undefined) notifyListeners(entry.listeners, event, this.options.logger);
  }

  private noteId(id: number): void {
    if (id > this.highestKnown) this.highestKnown = id;
  }
}
