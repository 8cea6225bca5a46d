import type { EventStore } from '../../adapters/store/event-store.js';
import type { StoreLogger } from '../../adapters/store/store-logger.js';

/** Options of {@link startRetentionJob}. */
export interface RetentionJobOptions {
  store: Pick<EventStore, 'deleteOlderThan'>;
  /** Events published longer ago than this are deleted. */
  retentionMs: number;
  /** Shorter-lived topics: their events are deleted once older than their own retention. */
  shortLived?: { topics: readonly string[]; retentionMs: number };
  /** Time between runs. The first run happens one interval after start (call `runOnce` for an immediate one). */
  intervalMs: number;
  /** Told about failed runs; default: failures are silent (the next run tries again). */
  logger?: StoreLogger;
  /** Clock in epoch ms; default `Date.now`. */
  now?: () => number;
}

/** A running retention job. */
export interface RetentionJob {
  /** Stops the timer; a run in flight finishes on its own. */
  stop(): void;
  /** Deletes expired events now; resolves to how many, rejects on store errors. */
  runOnce(): Promise<number>;
}

/**
 * Periodically deletes events older than `retentionMs`. Every instance may run it: the work is
 * one idempotent DELETE, so concurrent runs only race to delete the same rows. The timer is
 * unref'ed (it never keeps the process alive) and a failed run is logged, never thrown.
 */
export function startRetentionJob(options: RetentionJobOptions): RetentionJob {
  const { store, retentionMs, intervalMs, logger, shortLived, now = Date.now } = options;
  if (!(retentionMs > 0)) throw new RangeError(`retentionMs must be > 0, got ${retentionMs}`);
  if (!(intervalMs > 0)) throw new RangeError(`intervalMs must be > 0, got ${intervalMs}`);

  const runOnce = async (): Promise<number> => {
    const deleted = await store.deleteOlderThan(new Date(now() - retentionMs));
    if (!shortLived) return deleted;
    const cutoff = new Date(now() - shortLived.retentionMs);
    return deleted + (await store.deleteOlderThan(cutoff, { topics: shortLived.topics }));
  };
  let running = false;
  const timer = setInterval(() => {
    // A run slower than the interval (huge backlog, slow database) must not pile up behind itself.
    if (running) return;
    running = true;
    runOnce()
      .catch((error: unknown) => logger?.warn({ err: error }, 'event retention run failed'))
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  timer.unref();

  return { stop: () => clearInterval(timer), runOnce };
}
