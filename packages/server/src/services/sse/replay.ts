import type { StreamResetReason } from '@infinitescribe/protocol';
import type { EventBus } from '../../adapters/bus/event-bus.js';
import type { EventRecord } from '../../core/event-record.js';
import { formatEventId, idFloorAt, parseEventId } from '../../core/event-id.js';
import type { EventStore } from '../../adapters/store/event-store.js';
import { compactGenerationDeltas, compactTaskProgress } from './replay-compaction.js';

/** What a resume must send before going live. */
export interface ReplayPlan {
  /** Events after the client's id, ascending, without duplicates. */
  events: EventRecord[];
  /** Present when the client cannot be resumed exactly from where it stood. */
  reset?: { reason: StreamResetReason; since?: string };
  /** The id the client stood at, when it was one of ours. */
  after?: number;
  /** False exactly when something may have been lost. */
  complete: boolean;
}

/** Collaborators and bounds of {@link planReplay}. */
export interface ReplaySources {
  bus: EventBus;
  store: EventStore;
  maxEvents: number;
  /** Told when the store could not be read; the replay then goes on without it. */
  onStoreError: (error: unknown) => void;
}

/**
 * Works out what a client resuming from `lastEventId` on `topics` missed.
 * - malformed, or ahead of every id the cluster can have issued: `stream.reset {unknown_id}`,
 *   nothing replayed;
 * - covered by the hot log: exactly the events after it;
 * - older than the hot log, or above the head this instance knows but not beyond the clock (an
 *   id another instance issued alone during a Redis outage: what followed it there is not here):
 *   `stream.reset {gap, since}`, then the critical events the store still holds after it merged
 *   with what the hot log has, so the client loses only what is truly gone.
 * Deltas of a generation still running are compacted into one snapshot (docs/http-api.md, "Compaction"), and
 * only the latest `task.progress` of each task is replayed.
 */
export async function planReplay(
  sources: ReplaySources,
  topics: readonly string[],
  lastEventId: string,
): Promise<ReplayPlan> {
  const after = parseEventId(lastEventId);
  if (after === undefined) return { events: [], reset: { reason: 'unknown_id' }, complete: false };
  // The head comes with the read where the bus can tell it (one round trip per resume, not two).
  const hot = await sources.bus.read(topics, after, sources.maxEvents);
  const head = hot.head ?? (await sources.bus.headId());
  // Ids are seeded by the clock (event-id.ts): an id of ours, even one this instance has not seen,
  // is at most the head or an id of a millisecond already past (and every id issued from now on is
  // above it, so resuming from it skips nothing new).
  if (after > Math.max(head, idFloorAt(Date.now()))) {
    return { events: [], reset: { reason: 'unknown_id' }, complete: false };
  }
  const unseen = after > head;
  if (hot.gapTopics.length === 0 && !hot.truncated && !unseen) {
    const complete = (hot.unreadable ?? 0) === 0;
    return { events: compactTaskProgress(compactGenerationDeltas(hot.events)), after, complete };
  }

  const reset = { reason: 'gap' as const, since: formatEventId(hot.oldestId) };
  const fromHot = new Set(hot.events.map((event) => event.id));
  let stored: EventRecord[] = [];
  try {
    stored = await sources.store.readAfter({
      topics: hot.truncated || unseen ? topics : hot.gapTopics,
      after,
      // Only what went out before the hot log was read: the rest comes live. The store shows a
      // critical event once it has its id, a moment after it went out (event-publisher.ts), so a
      // stored event from after that read could pass over one that went out before it and has no
      // id in the store yet: the stream would then drop that one when it comes live.
      ...(hot.liveAbove === undefined ? {} : { before: hot.liveAbove + 1 }),
      limit: sources.maxEvents,
    });
  } catch (error) {
    sources.onStoreError(error);
  }
  const events = stored
    .filter((event) => !fromHot.has(event.id))
    .concat(hot.events)
    .sort((a, b) => a.id - b.id);
  return { events: compactTaskProgress(compactGenerationDeltas(events)), reset, after, complete: false };
}
