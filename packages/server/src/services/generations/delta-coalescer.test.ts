import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeltaCoalescer } from './delta-coalescer.js';

describe('DeltaCoalescer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function recording(flushMs = 40) {
    const frames: { text: string; at: number }[] = [];
    const coalescer = new DeltaCoalescer({
      flushMs,
      emit: async (text) => {
        frames.push({ text, at: Date.now() });
      },
    });
    return { frames, coalescer };
  }

  it('sends the first text at once, then at most one frame per interval', async () => {
    const { frames, coalescer } = recording(40);
    const start = Date.now();
    coalescer.push('a');
    await vi.advanceTimersByTimeAsync(0);
    expect(frames).toEqual([{ text: 'a', at: start }]);
    coalescer.push('b');
    await vi.advanceTimersByTimeAsync(10);
    coalescer.push('c');
    await vi.advanceTimersByTimeAsync(29);
    expect(frames).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(frames.map((frame) => frame.text)).toEqual(['a', 'bc']);
    expect(frames[1]?.at).toBe(start + 40);
  });

  it('turns a fast token stream into a frame stream whose concatenation is exact', async () => {
    const { frames, coalescer } = recording(40);
    const tokens = Array.from({ length: 200 }, (_, index) => ` w${index}`);
    for (const token of tokens) {
      coalescer.push(token);
      await vi.advanceTimersByTimeAsync(5);
    }
    await coalescer.drain();
    expect(frames.map((frame) => frame.text).join('')).toBe(tokens.join(''));
    // 200 tokens over 1 s at one frame per 40 ms: about 25 frames, not 200.
    expect(frames.length).toBeGreaterThanOrEqual(24);
    expect(frames.length).toBeLessThanOrEqual(27);
    for (let index = 1; index < frames.length - 1; index++) {
      expect((frames[index]?.at ?? 0) - (frames[index - 1]?.at ?? 0)).toBeGreaterThanOrEqual(40);
    }
  });

  it('drain sends what is buffered now, after the frame in flight, in order', async () => {
    const frames: string[] = [];
    let release = () => {};
    const coalescer = new DeltaCoalescer({
      flushMs: 40,
      emit: (text) =>
        new Promise<void>((resolve) => {
          frames.push(`start:${text}`);
          release = () => {
            frames.push(`end:${text}`);
            resolve();
          };
        }),
    });
    coalescer.push('a');
    coalescer.push('b');
    expect(frames).toEqual(['start:a']);
    const drained = coalescer.drain();
    await vi.advanceTimersByTimeAsync(0);
    expect(frames).toEqual(['start:a']);
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(frames).toEqual(['start:a', 'end:a', 'start:b']);
    release();
    await drained;
    expect(frames).toEqual(['start:a', 'end:a', 'start:b', 'end:b']);
    expect(coalescer.pending).toBe('');
  });

  it('keeps collecting while a slow emit is in flight, without waiting another interval', async () => {
    const frames: string[] = [];
    const coalescer = new DeltaCoalescer({
      flushMs: 40,
      emit: async (text) => {
        await new Promise((resolve) => setTimeout(resolve, 100));
        frames.push(text);
      },
    });
    coalescer.push('a');
    await vi.advanceTimersByTimeAsync(10);
    coalescer.push('b');
    await vi.advanceTimersByTimeAsync(50);
    coalescer.push('c');
    await vi.advanceTimersByTimeAsync(40);
    // 'a' took 100 ms; 'b' and 'c' go together right after it.
    expect(frames).toEqual(['a']);
    await vi.advanceTimersByTimeAsync(100);
    expect(frames).toEqual(['a', 'bc']);
  });

  it('puts the text of a failed emit back and sends it with the next frame', async () => {
    const frames: string[] = [];
    const errors: unknown[] = [];
    let failNext = true;
    const coalescer = new DeltaCoalescer({
      flushMs: 40,
      emit: async (text) => {
        if (failNext) {
          failNext = false;
          throw new Error('bus down');
        }
        frames.push(text);
      },
      onEmitError: (error) => errors.push(error),
    });
    coalescer.push('a');
    await vi.advanceTimersByTimeAsync(0);
    expect(errors).toHaveLength(1);
    expect(coalescer.pending).toBe('a');
    coalescer.push('b');
    await vi.advanceTimersByTimeAsync(40);
    expect(frames).toEqual(['ab']);
  });

  it('drain rejects when the last frame cannot be sent, keeping its text', async () => {
    const coalescer = new DeltaCoalescer({
      flushMs: 40,
      emit: async () => {
        throw new Error('store down');
      },
      onEmitError: () => {},
    });
    await expect(coalescer.drain()).resolves.toBeUndefined();
    coalescer.push('x');
    await vi.advanceTimersByTimeAsync(0);
    await expect(coalescer.drain()).rejects.toThrow('store down');
    expect(coalescer.pending).toBe('x');
  });

  it('stop drops buffered text and refuses more', async () => {
    const { frames, coalescer } = recording(40);
    coalescer.push('a');
    coalescer.push('b');
    coalescer.stop();
    await vi.advanceTimersByTimeAsync(100);
    expect(frames.map((frame) => frame.text)).toEqual(['a']);
    expect(() => coalescer.push('c')).toThrow(/stopped/);
    await coalescer.drain();
    expect(frames).toHaveLength(1);
  });

  it('ignores empty text', async () => {
    const { frames, coalescer } = recording(40);
    coalescer.push('');
    await vi.advanceTimersByTimeAsync(100);
    expect(frames).toEqual([]);
  });
});
