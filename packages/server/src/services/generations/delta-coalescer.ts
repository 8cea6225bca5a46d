/** Options of {@link DeltaCoalescer}. */
export interface DeltaCoalescerOptions {
  /** At most one frame per this many ms (AI_FLUSH_MS). */
  flushMs: number;
  /**
   * Sends one frame holding all the text pushed since the previous one. Frames are sent one at a
   * time, in order; while one is in flight new text keeps collecting. A rejection puts the text
   * back at the front of the buffer, to go with the next frame.
   */
  emit: (text: string) => Promise<void>;
  /** Told about a failed emit that will be retried (not about failures during {@link DeltaCoalescer.drain}). */
  onEmitError?: (error: unknown) => void;
  now?: () => number;
}

/**
 * Turns a token stream into a frame stream: text pushed at any rate goes out in frames at most
 * every `flushMs`, so the event rate does not follow the token rate. The first text after a quiet
 * period goes out at once (leading edge), so coalescing adds no latency to the first token.
 * The frames, concatenated, are exactly the text pushed.
 */
export class DeltaCoalescer {
  private buffer = '';
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private lastEmitAt = Number.NEGATIVE_INFINITY;
  private stopped = false;
  private draining = false;
  private readonly now: () => number;

  constructor(private readonly options: DeltaCoalescerOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Text not yet handed to `emit`. */
  get pending(): string {
    return this.buffer;
  }

  /** Adds text; it goes out with the next frame. */
  push(text: string): void {
    if (this.stopped) throw new Error('the coalescer is stopped');
    if (text === '') return;
    this.buffer += text;
    this.schedule();
  }

  /**
   * Sends what is buffered without waiting for the interval and resolves once every frame is out.
   * @throws what `emit` threw, if the last frame could not be sent (its text stays in {@link pending}).
   */
  async drain(): Promise<void> {
    this.draining = true;
    this.clearTimer();
    try {
      // An emit in flight finishes first: frames never overtake each other.
      if (this.inFlight) await this.inFlight;
      while (this.buffer !== '' && !this.stopped) {
        const text = this.buffer;
        this.buffer = '';
        this.lastEmitAt = this.now();
        try {
          await this.options.emit(text);
        } catch (error) {
          this.buffer = text + this.buffer;
          throw error;
        }
      }
    } finally {
      this.draining = false;
    }
  }

  /** Drops buffered text and sends nothing more; an emit already in flight is not recalled. */
  stop(): void {
    this.stopped = true;
    this.clearTimer();
    this.buffer = '';
  }

  private schedule(): void {
    if (this.stopped || this.draining || this.timer !== undefined || this.inFlight !== undefined) return;
    if (this.buffer === '') return;
    const wait = this.lastEmitAt + this.options.flushMs - this.now();
    if (wait <= 0) {
      this.emitBuffered();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.emitBuffered();
    }, wait);
  }

  private emitBuffered(): void {
    if (this.stopped || this.buffer === '') return;
    const text = this.buffer;
    this.buffer = '';
    this.lastEmitAt = this.now();
    const flight = this.options.emit(text).then(
      () => undefined,
      (error: unknown) => {
        if (!this.stopped) this.buffer = text + this.buffer;
        this.options.onEmitError?.(error);
      },
    );
    this.inFlight = flight.finally(() => {
      this.inFlight = undefined;
      this.schedule();
    });
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
