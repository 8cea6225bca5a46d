import { isRedisIssued } from '../../core/event-id.js';
import type { EventRecord } from '../../core/event-record.js';
import type { HotLogRead } from './event-bus.js';

/**
 * What the Redis bus keeps while Redis is unreachable and this instance delivers on its own
 * (docs/runbook.md, "Redis down"): the events it published or still received since, bounded, so that
 * a client of this instance that reconnects during the outage resumes from them.
 *
 * What it can vouch for is narrow: this instance is an island. A reader that stood at or after
 * `since` (the highest id known when Redis went away) gets everything this island knows after
 * it; anything older lived in Redis and is reported as a gap (stream.reset, then the store). So is
 * a reader that stood at an id another island issued (not of a Redis counter's residue, and not one
 * of this island's): what followed it there, and what this island published before it, it never got.
 * Once Redis is heard serving the other instances again (an event they published since the outage
 * began, a notice, a reader standing at such an event), it vouches for nothing: what they published
 * before this instance's subscriber was back is not here, so every read reports a gap (the store
 * gives back the critical events).
 */
export class LocalFallback {
  /** Topics published on here while Redis was unreachable (they need a gap mark on rejoin). */
  readonly publishedTopics = new Set<string>();
  /** Events published here while Redis was unreachable. */
  publishedCount = 0;
  private readonly events: EventRecord[] = [];
  private readonly ids = new Set<number>();
  /** Highest id evicted from the buffer: readers from below it have lost events. */
  private evictedUpTo = 0;
  /** Redis was heard serving the other instances during the outage (see the class comment). */
  private redisServing = false;

  constructor(
    /** Highest id known when Redis became unreachable. */
    readonly since: number,
    private readonly maxEvents: number,
    /** Redis's counters: ids of residues below this came from Redis, the others from islands. */
    private readonly redisCounters = 1,
  ) {}

  /** Keeps `record`; `publishedHere` marks its topic for the gap mark on rejoin. */
  add(record: EventRecord, publishedHere: boolean): void {
    // Issued since the outage began and received from Redis: Redis took it from someone else.
    if (!publishedHere && record.id > this.since) this.redisServing = true;
    if (publishedHere) {
      this.publishedTopics.add(record.topic);
      this.publishedCount++;
    }
    if (this.ids.has(record.id)) return;
    this.ids.add(record.id);
    this.events.push(record);
    while (this.events.length > this.maxEvents) {
      const evicted = this.events.shift();
      if (!evicted) break;
      this.ids.delete(evicted.id);
      this.evictedUpTo = Math.max(this.evictedUpTo, evicted.id);
    }
  }

  /** Redis serves the other instances again (a notice came through it). */
  heardRedisServe(): void {
    this.redisServing = true;
  }

  /** Whether Redis was heard serving the other instances during the outage. */
  get redisServesOthers(): boolean {
    return this.redisServing;
  }

  /** The port's read, answered from what this island knows. */
  read(topics: readonly string[], after: number, limit: number): HotLogRead {
    const wanted = new Set(topics);
    const coverage = Math.max(this.since, this.evictedUpTo);
    let events = this.events.filter((event) => event.id > after && wanted.has(event.topic));
    // Received events can be older than local ones (another instance's ids interleave).
    events.sort((a, b) => a.id - b.id);
    const truncated = events.length > limit;
    if (truncated) events = events.slice(events.length - limit);
    const fromRedis = isRedisIssued(after, this.redisCounters);
    // A reader from an id Redis issued since the outage began, which never came here: Redis
    // serves the others, and this island's next id could pass over that very event on its streams.
    if (fromRedis && after > this.since && !this.ids.has(after)) this.redisServing = true;
    const elsewhere = !fromRedis && !this.ids.has(after);
    return {
      events,
      gapTopics: after < coverage || elsewhere || this.redisServing ? [...wanted] : [],
      oldestId: events[0]?.id ?? coverage,
      truncated,
    };
  }
}
