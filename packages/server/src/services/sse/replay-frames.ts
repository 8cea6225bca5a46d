import type { EventRecord } from '../../core/event-record.js';
import { type SharedFrame, trySharedEventFrame } from './frame.js';

/** Frames kept: a storm's resumes replay the last few seconds of events, well inside this. */
const DEFAULT_MAX_FRAMES = 4_096;

/**
 * Replay frames built once per event for every stream that replays it. When an instance dies,
 * thousands of clients resume at once from nearly the same point, and each replays the same
 * recent events: serialising each event once per stream made the cost of a storm grow with
 * streams × events instead of events. Bounded (oldest first out); an event id names one event
 * cluster-wide (event-id.ts), so a cached frame is that event's frame — except compaction's
 * `ai.generation.snapshot`, which borrows its last delta's id and whose text depends on where the
 * replay starts: it is never cached.
 */
export class ReplayFrames {
  /** `null`: the event cannot be serialised (it is skipped, and that is remembered too). */
  private readonly frames = new Map<number, SharedFrame | null>();

  constructor(private readonly maxFrames = DEFAULT_MAX_FRAMES) {}

  /** The event's frame, or undefined when it cannot be serialised. */
  frameOf(record: EventRecord): SharedFrame | undefined {
    if (record.type === 'ai.generation.snapshot') return trySharedEventFrame(record);
    const cached = this.frames.get(record.id);
    if (cached !== undefined) return cached ?? undefined;
    const frame = trySharedEventFrame(record);
    if (this.frames.size >= this.maxFrames) {
      const oldest = this.frames.keys().next();
      if (!oldest.done) this.frames.delete(oldest.value);
    }
    this.frames.set(record.id, frame ?? null);
    return frame;
  }

  get size(): number {
    return this.frames.size;
  }
}
