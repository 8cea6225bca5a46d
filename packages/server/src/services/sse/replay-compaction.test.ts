import { validateEventPayload } from '@infinitescribe/protocol/schemas';
import { describe, expect, it } from 'vitest';
import type { EventRecord } from '../../core/event-record.js';
import { eventFrame } from './frame.js';
import { compactGenerationDeltas, compactTaskProgress } from './replay-compaction.js';

let nextId = 1000;
function record(type: EventRecord['type'], payload: unknown): EventRecord {
  return { id: nextId++, topic: 'user:u1', type, ts: '2025-01-01T00:00:00.000Z', payload, critical: false };
}
const delta = (generationId: string, seq: number, text: string) =>
  record('ai.generation.delta', { generationId, seq, text });

/** What a client makes of a replay: the text of each generation. */
function clientText(events: readonly EventRecord[]): Map<string, string> {
  const texts = new Map<string, string>();
  for (const event of events) {
    const payload = event.payload as { generationId: string; text: string };
    if (event.type === 'ai.generation.delta')
      texts.set(payload.generationId, (texts.get(payload.generationId) ?? '') + payload.text);
    if (event.type === 'ai.generation.snapshot') texts.set(payload.generationId, payload.text);
  }
  return texts;
}

describe('compactGenerationDeltas', () => {
  it('frames a snapshot with its own payload, not the serialised payload of the delta it replaces', () => {
    const deltas = [delta('g1', 0, 'Once'), delta('g1', 1, ' upon')].map((event) => ({
      ...event,
      payloadJson: JSON.stringify(event.payload),
    }));
    const [snapshot] = compactGenerationDeltas(deltas);
    const data = /^data: (.*)$/m.exec(eventFrame(snapshot as EventRecord).toString('utf8'))?.[1] ?? '{}';
    expect((JSON.parse(data) as { payload: unknown }).payload).toEqual({
      generationId: 'g1',
      seq: 1,
      text: 'Once upon',
    });
  });

  it('replaces a running generation’s deltas by one snapshot at its last delta, same id', () => {
    const note = record('notification', { title: 'hi', level: 'info' });
    const events = [
      record('ai.generation.started', { generationId: 'g1' }),
      delta('g1', 0, 'Once'),
      note,
      delta('g1', 1, ' upon'),
      delta('g1', 2, ' a time'),
    ];
    const compacted = compactGenerationDeltas(events);
    expect(compacted.map((event) => event.type)).toEqual([
      'ai.generation.started',
      'notification',
      'ai.generation.snapshot',
    ]);
    const snapshot = compacted.at(-1);
    expect(snapshot?.id).toBe(events.at(-1)?.id);
    expect(snapshot?.payload).toEqual({ generationId: 'g1', seq: 2, text: 'Once upon a time' });
    expect(validateEventPayload('ai.generation.snapshot', snapshot?.payload).ok).toBe(true);
    expect(clientText(compacted)).toEqual(clientText(events));
  });

  it('leaves finished generations, partial replays and other generations alone', () => {
    const events = [
      delta('done', 0, 'a'),
      delta('done', 1, 'b'),
      record('ai.generation.completed', { generationId: 'done', text: 'ab' }),
      delta('partial', 3, 'x'),
      delta('partial', 4, 'y'),
      delta('single', 0, 'only'),
      delta('running', 0, 'r'),
      delta('running', 1, 's'),
    ];
    const compacted = compactGenerationDeltas(events);
    expect(compacted.slice(0, -1)).toEqual(events.slice(0, -2));
    expect(compacted.at(-1)?.payload).toEqual({ generationId: 'running', seq: 1, text: 'rs' });
    expect(compactGenerationDeltas(events.slice(0, 3))).toEqual(events.slice(0, 3));
  });
});

const progress = (taskId: string, stageIndex: number, percent: number) =>
  record('task.progress', { taskId, stage: `Stage ${stageIndex + 1}`, stageIndex, stageCount: 3, percent });

describe('compactTaskProgress', () => {
  it('keeps only the last progress of each task, at its own place and id', () => {
    const note = record('notification', { title: 'hi', level: 'info' });
    const events = [
      progress('t1', 0, 0),
      progress('t2', 0, 5),
      progress('t1', 0, 10),
      note,
      progress('t1', 1, 40),
      progress('t2', 1, 50),
      record('task.completed', { taskId: 't2', result: { ok: true } }),
      progress('t1', 1, 55.5),
    ];
    const compacted = compactTaskProgress(events);
    expect(compacted).toEqual([note, events[5], events[6], events[7]]);
    for (const event of compacted) expect(validateEventPayload(event.type, event.payload).ok).toBe(true);
  });

  it('passes replays without progress, or with one per task, through unchanged', () => {
    const events = [
      record('ai.generation.started', { generationId: 'g1' }),
      progress('t1', 0, 1),
      record('task.cancelled', { taskId: 't1' }),
      progress('t2', 2, 99.9),
    ];
    expect(compactTaskProgress(events)).toEqual(events);
    expect(compactTaskProgress([])).toEqual([]);
  });

  it('chains with the generation compaction (as planReplay does)', () => {
    const events = [delta('g1', 0, 'a'), progress('t1', 0, 10), delta('g1', 1, 'b'), progress('t1', 0, 20)];
    const compacted = compactTaskProgress(compactGenerationDeltas(events));
    expect(compacted.map((event) => event.type)).toEqual(['ai.generation.snapshot', 'task.progress']);
    expect(compacted.map((event) => event.id)).toEqual([events[2]?.id, events[3]?.id]);
  });
});
