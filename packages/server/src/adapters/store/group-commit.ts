/** Options of {@link GroupCommit}. */
export interface GroupCommitOptions<TItem> {
  /** Writes a batch in one statement (one commit); rejects to fail every item of the batch. */
  write: (items: TItem[]) => Promise<void>;
  /** Batches written at once; more items wait and join the next batch. */
  maxInFlight: number;
  /** Largest batch (bounds one statement's size). */
  maxBatch: number;
}

interface Pending<TItem> {
  item: TItem;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: items added while the writer is busy go out together in the next batch, so a
 * burst of critical events costs a few commits instead of one each (with the embedded store a
 * commit blocks the event loop for milliseconds). An idle writer writes at once: no added latency.
 * Each `add` settles with its own batch: an item is acknowledged only once its batch committed.
 */
export class GroupCommit<TItem> {
  private queue: Pending<TItem>[] = [];
  private inFlight = 0;

  constructor(private readonly options: GroupCommitOptions<TItem>) {}

  add(item: TItem): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.options.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      this.inFlight++;
      this.options
        .write(batch.map((pending) => pending.item))
        .then(
          () => batch.forEach((pending) => pending.resolve()),
          (error: unknown) => batch.forEach((pending) => pending.reject(error)),
        )
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
  }
}
