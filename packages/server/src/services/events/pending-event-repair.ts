import type { EventBus } from '../../adapters/bus/event-bus.js';
import { CLOCK_SKEW_MS } from '../jobs/job-journal.js';
import type { EventStore, PendingRow } from '../../adapters/store/event-store.js';
import { idFloorAt } from '../../core/event-id.js';

/**
 * The repair pass of critical events left pending (see event-publisher.ts): a row stored before its
 * publish whose publisher never confirmed it, because it crashed between the steps, or the bus failed
 * with an unknown outcome, or the store failed the confirmation. Its fate is in the hot log: the
 * publish script appends and fans out in one step, so the key is there exactly when the event went
 * out. Found: the row gets the id it went out with. Not found once {@link DROP_AFTER_MS} has passed:
 * it never went out (nobody saw it, nobody was told it was stored), so the row is deleted.
 *
 * What the hot log cannot vouch for is decided the same way: an event whose key is gone from the log
 * when its row is looked at (its publisher and the log lost together: an embedded process killed
 * between publish and confirmation, or Redis emptied in that window) is deleted although some
 * clients may have seen it live. Its publisher was never answered 201.
 */

/** A pending row not found in the hot log this long after it was committed was never published. */
export const DROP_AFTER_MS = 60_000;
/** Rows younger than this are left to their publisher, which normally confirms them within milliseconds. */
export const CONFIRM_AFTER_MS = 10_000;
/** Rows looked at per run. */
const BATCH = 500;

/** Options of {@link repairPendingEvents}. */
export interface PendingRepairOptions {
  bus: EventBus;
  store: EventStore;
  /** The hot log's events per topic (HOT_LOG_MAX_EVENTS): a topic's whole log is read. */
  hotLogMaxEvents: number;
  /** Default {@link DROP_AFTER_MS}. */
  dropAfterMs?: number;
  logger: { warn(details: object, message: string): void };
}

/** Outcome of one run. */
export interface PendingRepairRun {
  confirmed: number;
  dropped: number;
}

/**
 * One run over pending rows at least `confirmAfterMs` old: confirmed from the hot log, or deleted
 * past {@link DROP_AFTER_MS}. Does nothing while the bus is not fully up (an instance cut off from
 * Redis cannot tell what went out). Every instance may run it: both outcomes are idempotent.
 */
export async function repairPendingEvents(
  options: PendingRepairOptions,
  confirmAfterMs = CONFIRM_AFTER_MS,
): Promise<PendingRepairRun> {
  const { bus, store } = options;
  const run: PendingRepairRun = { confirmed: 0, dropped: 0 };
  if ((await bus.health()).status !== 'up') return run;
  const rows = await store.readPending({ olderThanMs: confirmAfterMs, limit: BATCH });
  const byTopic = new Map<string, PendingRow[]>();
  for (const row of rows) byTopic.set(row.event.topic, [...(byTopic.get(row.event.topic) ?? []), row]);
  for (const [topic, pending] of byTopic) {
    const since = Math.min(...pending.map((row) => Date.parse(row.event.ts)));
    const read = await bus.read([topic], idFloorAt(since - CLOCK_SKEW_MS), options.hotLogMaxEvents);
    const published = new Map(read.events.flatMap((event) => (event.key === undefined ? [] : [[event.key, event.id]])));
    for (const { event, ageMs } of pending) {
      const id = published.get(event.key);
      if (id !== undefined) {
        await store.confirm({ ...event, id });
        run.confirmed++;
      } else if (ageMs >= (options.dropAfterMs ?? DROP_AFTER_MS)) {
        await store.discardPending(event.key);
        run.dropped++;
      }
    }
  }
  if (run.confirmed + run.dropped > 0) options.logger.warn({ ...run }, 'repaired critical events left pending');
  return run;
}

/** A running repair timer. */
export interface PendingRepairJob {
  stop(): void;
}

/** Runs {@link repairPendingEvents} every `intervalMs` (unref'ed; a failed run is logged, never thrown). */
export function startPendingRepair(options: PendingRepairOptions & { intervalMs: number }): PendingRepairJob {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    repairPendingEvents(options)
      .catch((error: unknown) => options.logger.warn({ err: error }, 'pending critical event repair failed'))
      .finally(() => {
        running = false;
      });
  }, options.intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
