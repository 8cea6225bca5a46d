import type { EventRecord } from '../../core/event-record.js';

const TERMINAL_TYPES = new Set(['ai.generation.completed', 'ai.generation.failed', 'ai.generation.cancelled']);

interface DeltaPayload {
  generationId: string;
  seq: number;
  text: string;
}

/**
 * docs/http-api.md, "Compaction": in a replay (ascending by id), the deltas of a generation that
 * is still running (no outcome in the replay) become one `ai.generation.snapshot`
 * `{generationId, seq, text}` at the place and with the id of its last delta, so a resume point
 * taken from it stays valid and the live deltas continue from `seq + 1`.
 *
 * Only when the replay holds that generation's deltas from seq 0 without a hole, since a snapshot
 * carries the whole text so far; otherwise its deltas are left as they are. Events of other
 * types, and deltas of generations whose outcome is in the replay, pass through untouched.
 */
export function compactGenerationDeltas(events: readonly EventRecord[]): EventRecord[] {
  const deltas = new Map<string, { records: EventRecord[]; contiguous: boolean }>();
  const finished = new Set<string>();
  for (const event of events) {
    const generationId = (event.payload as { generationId?: unknown } | null)?.generationId;
    if (typeof generationId !== 'string') continue;
    if (TERMINAL_TYPES.has(event.type)) finished.add(generationId);
    if (event.type !== 'ai.generation.delta') continue;
    const entry = deltas.get(generationId) ?? { records: [], contiguous: true };
    if ((event.payload as DeltaPayload).seq !== entry.records.length) entry.contiguous = false;
    entry.records.push(event);
    deltas.set(generationId, entry);
  }
  const snapshots = new Map<number, EventRecord>();
  const dropped = new Set<number>();
  for (const [generationId, { records, contiguous }] of deltas) {
    const last = records.at(-1);
    if (!contiguous || finished.has(generationId) || records.length < 2 || !last) continue;
    for (const record of records) dropped.add(record.id);
    // Not the delta's serialised payload: the snapshot carries another one.
    const { payloadJson: _deltaJson, ...fields } = last;
    snapshots.set(last.id, {
      ...fields,
      type: 'ai.generation.snapshot',
      payload: {
        generationId,
        seq: (last.payload as DeltaPayload).seq,
        text: records.map((record) => (record.payload as DeltaPayload).text).join(''),
      },
    });
  }
  if (snapshots.size === 0) return [...events];
  return events.flatMap((event) => {
    const snapshot = snapshots.get(event.id);
    if (snapshot) return [snapshot];
    return dropped.has(event.id) ? [] : [event];
  });
}

/**
 * "Replay latest progress only": in a replay (ascending by id), only the last `task.progress` of
 * each task is kept, at its own place and with its own id (progress is a level, not a sum, so the
 * last value wins and a resume point taken from it stays valid). Everything else passes through.
 */
export function compactTaskProgress(events: readonly EventRecord[]): EventRecord[] {
  const lastProgress = new Map<string, number>();
  for (const event of events) {
    if (event.type !== 'task.progress') continue;
    const taskId = (event.payload as { taskId?: unknown } | null)?.taskId;
    if (typeof taskId === 'string') lastProgress.set(taskId, event.id);
  }
  return events.filter((event) => {
    if (event.type !== 'task.progress') return true;
    const taskId = (event.payload as { taskId?: unknown } | null)?.taskId;
    return typeof taskId !== 'string' || lastProgress.get(taskId) === event.id;
  });
}
