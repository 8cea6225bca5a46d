import type { SharedFrame } from './frame.js';

/** A stream with frames waiting for the end of the event-loop turn. */
export interface BatchedWriter {
  flushBatch(): void;
}

/**
 * Writes each stream's frames of one event-loop turn as one socket write. Events that arrive
 * faster than one per turn (a burst of publishes, a Redis read carrying many messages) would
 * otherwise cost one write system call per frame per stream — the largest cost of fan-out, on
 * the server and on every client (one read per segment). Streams queue their frames here and one
 * `setImmediate` per turn, for all streams, writes them: the first frame of a quiet stream waits
 * only for the rest of the turn's I/O callbacks, which is not measurable at low rates.
 *
 * Streams of the same topics receive the same frames in the same order, so the joined bytes are
 * built once and shared, as a single frame is.
 */
export class FrameBatcher {
  private queue: BatchedWriter[] = [];
  private scheduled = false;
  private lastFrames: readonly SharedFrame[] = [];
  private lastJoined: SharedFrame | undefined;

  /** Has `writer.flushBatch()` called at the end of this turn (the caller schedules each writer once per batch). */
  schedule(writer: BatchedWriter): void {
    this.queue.push(writer);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  /** Flushes every queued writer now (also run by the turn's `setImmediate`). */
  readonly flush = (): void => {
    this.scheduled = false;
    const queue = this.queue;
    this.queue = [];
    for (const writer of queue) writer.flushBatch();
    this.lastFrames = [];
    this.lastJoined = undefined;
  };

  /** The frames as one: the same bytes, in the same order (several chunks in one write are valid chunked encoding). */
  join(frames: readonly SharedFrame[]): SharedFrame {
    if (this.lastJoined !== undefined && sameFrames(frames, this.lastFrames)) return this.lastJoined;
    const joined = {
      plain: Buffer.concat(frames.map((frame) => frame.plain)),
      chunked: Buffer.concat(frames.map((frame) => frame.chunked)),
    };
    this.lastFrames = frames;
    this.lastJoined = joined;
    return joined;
  }
}

function sameFrames(a: readonly SharedFrame[], b: readonly SharedFrame[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
