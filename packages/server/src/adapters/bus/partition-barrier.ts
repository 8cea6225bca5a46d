/**
 * The merge barrier of a bus split into partitions, each with its own id counter
 * (docs/sharding-the-bus.md; the partitioned bus that uses it is being built).
 *
 * Each partition's events reach this instance in its own counter's order, but two counters are
 * not ordered against each other: partition 1 may issue id 500 after partition 2 issued 700. A
 * stream spans topics of several partitions and never sends an id below one it has sent (it drops
 * such an event), so the events of all partitions must come out in one id order.
 *
 * An event with id x is released once every partition waited for is known to be past x: its
 * **watermark** (the highest id that reached here from it, in its own order, or the value of a
 * tick) is ≥ x. A partition that is behind or idle is asked for a tick: it raises its counter to
 * at least the target and answers on its subscriber connection, after everything it issued before,
 * so every id it issues later is above the answer. One tick per partition is outstanding at a time,
 * asked for once per turn with the highest id waiting; one that goes unanswered is asked for again.
 */

/** Options of {@link PartitionBarrier}. */
export interface PartitionBarrierOptions<T extends { readonly id: number }> {
  /** Each event, in one id order across partitions, once no waited-for partition can still issue a lower id. */
  release(event: T): void;
  /**
   * Asks `partition` to raise its counter to at least `target` and to answer with
   * {@link PartitionBarrier.advance} once everything it issued before has reached this instance.
   */
  requestTick(partition: number, target: number): void;
  /**
   * An event at or below what its partition had already passed: it cannot take its place in the
   * order (the partition lost writes, a failover). It is released at once; streams that passed its
   * id drop it, so the caller must tell them (a live gap).
   */
  onRegression?(partition: number, event: T): void;
  /** A tick not answered within this is asked for again. Default 1 000 ms. */
  tickTimeoutMs?: number;
  /** Monotonic ms. Default `performance.now`. */
  now?: () => number;
}

const DEFAULT_TICK_TIMEOUT_MS = 1_000;

interface OutstandingTick {
  target: number;
  askedAt: number;
}

export class PartitionBarrier<T extends { readonly id: number }> {
  /** The waited-for partitions and their watermarks. */
  private readonly watermarks = new Map<number, number>();
  /** Waiting events, ascending by id from `head` (events arrive nearly in order: inserted from the end). */
  private pending: T[] = [];
  private head = 0;
  private readonly ticks = new Map<number, OutstandingTick>();
  private askScheduled = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly tickTimeoutMs: number;
  private readonly now: () => number;

  constructor(private readonly options: PartitionBarrierOptions<T>) {
    this.tickTimeoutMs = options.tickTimeoutMs ?? DEFAULT_TICK_TIMEOUT_MS;
    this.now = options.now ?? (() => performance.now());
  }

  /** Events waiting for another partition's watermark. */
  get waiting(): number {
    return this.pending.length - this.head;
  }

  /** The partitions waited for, with their watermarks. */
  get partitions(): ReadonlyMap<number, number> {
    return this.watermarks;
  }

  /**
   * Starts waiting for `partition` (this instance now has streams on its topics): no event above
   * `watermark` is released until the partition is known to be past it. Every event of the
   * partition that reaches here later must be above `watermark` (a counter read before the first
   * subscription to it), or it counts as a regression.
   */
  wait(partition: number, watermark: number): void {
    this.watermarks.set(partition, Math.max(watermark, this.watermarks.get(partition) ?? 0));
    this.settle();
  }

  /** An event from `partition`, which sends them in its counter's order. */
  receive(partition: number, event: T): void {
    const watermark = this.watermarks.get(partition);
    if (watermark !== undefined) {
      if (event.id <= watermark) {
        this.options.onRegression?.(partition, event);
        this.options.release(event);
        return;
      }
      this.watermarks.set(partition, event.id);
    }
    this.insert(event);
    this.settle();
  }

  /**
   * An event that no partition's counter issued (an instance's own id while Redis was unreachable):
   * it takes its place in the one id order, so no stream passes over an older event still
   * waiting, but it says nothing of any partition's progress.
   */
  hold(event: T): void {
    this.insert(event);
    this.settle();
  }

  /** `partition`'s counter is at least `value`, and everything it issued up to it has arrived (a tick's answer). */
  advance(partition: number, value: number): void {
    const tick = this.ticks.get(partition);
    if (tick !== undefined && value >= tick.target) this.ticks.delete(partition);
    const watermark = this.watermarks.get(partition);
    if (watermark === undefined || value <= watermark) return;
    this.watermarks.set(partition, value);
    this.settle();
  }

  /** Stops the retry timer; what is waiting stays. */
  close(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private insert(event: T): void {
    let at = this.pending.length;
    while (at > this.head && (this.pending[at - 1]?.id ?? 0) > event.id) at--;
    if (at === this.pending.length) this.pending.push(event);
    else this.pending.splice(at, 0, event);
  }

  /** Releases what every waited-for watermark has passed, then asks for ticks for the rest. */
  private settle(): void {
    let floor = Infinity;
    for (const watermark of this.watermarks.values()) floor = Math.min(floor, watermark);
    while (this.head < this.pending.length) {
      const event = this.pending[this.head] as T;
      if (event.id > floor) break;
      this.head++;
      this.options.release(event);
    }
    if (this.head === this.pending.length) {
      this.pending = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.head);
      this.head = 0;
    }
    if (this.waiting > 0 && !this.askScheduled) {
      this.askScheduled = true;
      queueMicrotask(() => this.askForTicks());
    }
  }

  /** One tick per partition behind the oldest waiting event, for the newest one (so one answer releases all). */
  private askForTicks(): void {
    this.askScheduled = false;
    if (this.waiting === 0) return;
    const oldest = (this.pending[this.head] as T).id;
    const newest = (this.pending[this.pending.length - 1] as T).id;
    const now = this.now();
    for (const [partition, watermark] of this.watermarks) {
      if (watermark >= oldest) continue;
      const tick = this.ticks.get(partition);
      if (tick !== undefined && tick.target >= oldest && now - tick.askedAt < this.tickTimeoutMs) continue;
      this.ticks.set(partition, { target: newest, askedAt: now });
      this.options.requestTick(partition, newest);
    }
    this.armRetry();
  }

  private armRetry(): void {
    if (this.retryTimer !== undefined || this.ticks.size === 0) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.askForTicks();
    }, this.tickTimeoutMs);
    this.retryTimer.unref();
  }
}
