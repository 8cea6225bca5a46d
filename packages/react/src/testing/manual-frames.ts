/**
 * @module A frame scheduler the test advances by hand, for counting renders per frame.
 */
import type { FrameScheduler } from '../frame-scheduler.js';

/**
 * Frames that run only when the test calls `flush()`.
 * @example
 * const frames = new ManualFrames();
 * render(<SSEProvider client={client} scheduleFrame={frames.schedule}>…</SSEProvider>);
 * act(() => frames.flush());
 */
export class ManualFrames {
  private queue: (() => void)[] = [];

  readonly schedule: FrameScheduler = (callback) => {
    this.queue.push(callback);
    return () => {
      this.queue = this.queue.filter((queued) => queued !== callback);
    };
  };

  /** Callbacks waiting for the next frame. */
  get pending(): number {
    return this.queue.length;
  }

  /** Runs one frame: every callback queued before it. */
  flush(): void {
    const queue = this.queue;
    this.queue = [];
    for (const callback of queue) callback();
  }
}
