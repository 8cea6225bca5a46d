import { describe, expect, it } from 'vitest';
import type { EventRecord } from '../../core/event-record.js';
import { eventFrame } from './frame.js';
import { ReplayFrames } from './replay-frames.js';

function record(id: number, type = 'notification', payload: unknown = { title: `t${id}`, level: 'info' }): EventRecord {
  return { id, topic: 'broadcast', type, ts: '2026-12-02T10:00:00.000Z', payload, critical: false };
}

describe('ReplayFrames', () => {
  it('builds an event frame once for every stream that replays it, with the event bytes', () => {
    const frames = new ReplayFrames();
    // Two streams resuming get two records decoded separately: the frame is shared anyway.
    const first = frames.frameOf(record(7));
    const second = frames.frameOf(record(7));
    expect(first).toBeDefined();
    expect(second).toBe(first);
    expect(first?.plain.equals(eventFrame(record(7)))).toBe(true);
    expect(first?.chunked.toString('latin1')).toBe(
      `${first?.plain.length.toString(16)}\r\n${first?.plain.toString('latin1')}\r\n`,
    );
  });

  it('stays bounded, dropping the oldest frames first', () => {
    const frames = new ReplayFrames(3);
    const oldest = frames.frameOf(record(1));
    for (const id of [2, 3, 4]) frames.frameOf(record(id));
    expect(frames.size).toBe(3);
    expect(frames.frameOf(record(1))).not.toBe(oldest);
  });

  it('never serves a compacted snapshot from the cache (its text depends on where the replay starts)', () => {
    const frames = new ReplayFrames();
    const short = frames.frameOf(record(9, 'ai.generation.snapshot', { generationId: 'g', seq: 1, text: 'ab' }));
    const long = frames.frameOf(record(9, 'ai.generation.snapshot', { generationId: 'g', seq: 1, text: 'abcd' }));
    expect(short?.plain.toString()).toContain('"text":"ab"');
    expect(long?.plain.toString()).toContain('"text":"abcd"');
  });

  it('remembers an event that cannot be serialised as skipped', () => {
    const frames = new ReplayFrames();
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(frames.frameOf(record(5, 'notification', cyclic))).toBeUndefined();
    expect(frames.frameOf(record(5, 'notification', cyclic))).toBeUndefined();
  });
});
