// @vitest-environment jsdom
import { act, cleanup, render, renderHook } from '@testing-library/react';
import { StrictMode, type ReactNode } from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { StateLoaders } from '@infinitescribe/client';
import { SSEProvider } from './sse-provider.js';
import { FakeSSEClient } from '@infinitescribe/client/testing';
import { ManualFrames } from './testing/manual-frames.js';
import { useGeneration } from './use-generation.js';

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

const ID = 'g1';

function counted(client: FakeSSEClient, options: { frames?: ManualFrames; loaders?: Partial<StateLoaders> } = {}) {
  let renders = 0;
  const wrapper = ({ children }: { children: ReactNode }) => (
    <SSEProvider
      client={client}
      {...(options.frames ? { scheduleFrame: options.frames.schedule } : {})}
      {...(options.loaders ? { loaders: options.loaders } : {})}
    >
      {children}
    </SSEProvider>
  );
  const hook = renderHook(
    ({ id }: { id: string | null }) => {
      renders++;
      return useGeneration(id);
    },
    { wrapper, initialProps: { id: ID as string | null } },
  );
  return { hook, renders: () => renders };
}

function burst(client: FakeSSEClient, from: number, count: number): void {
  for (let seq = from; seq < from + count; seq++) {
    client.publish('ai.generation.delta', { generationId: ID, seq, text: `t${seq} ` });
  }
}

describe('useGeneration', () => {
  it('is idle without an id', () => {
    const { hook } = counted(new FakeSSEClient());
    hook.rerender({ id: null });
    expect(hook.result.current).toMatchObject({ status: 'idle', text: '', isStreaming: false, generationId: null });
  });

  it('renders once per animation frame for a burst of 100 deltas (requestAnimationFrame)', () => {
    const callbacks: FrameRequestCallback[] = [];
    vi.stubGlobal('requestAnimationFrame', (callback: FrameRequestCallback) => callbacks.push(callback));
    vi.stubGlobal('cancelAnimationFrame', vi.fn());
    const client = new FakeSSEClient();
    const { hook, renders } = counted(client);
    expect(hook.result.current).toMatchObject({ status: 'pending', isStreaming: true });
    const before = renders();
    act(() => {
      client.publish('ai.generation.started', { generationId: ID });
      burst(client, 0, 100);
    });
    expect(renders()).toBe(before); // nothing until the frame
    expect(callbacks).toHaveLength(1);
    act(() => callbacks.shift()?.(0));
    expect(renders()).toBe(before + 1);
    expect(hook.result.current.text.split(' ')).toHaveLength(101);
    expect(hook.result.current).toMatchObject({ status: 'running', isStreaming: true });
  });

  it('renders at most once per frame while a stream spreads over many frames, and ends with the final text', () => {
    const frames = new ManualFrames();
    const client = new FakeSSEClient();
    const { hook, renders } = counted(client, { frames });
    const before = renders();
    for (let frame = 0; frame < 10; frame++) {
      act(() => burst(client, frame * 20, 20));
      expect(frames.pending).toBe(1);
      act(() => frames.flush());
    }
    expect(renders()).toBe(before + 10);
    act(() => client.publish('ai.generation.completed', { generationId: ID, text: 'final text' }));
    act(() => frames.flush());
    expect(hook.result.current).toMatchObject({ status: 'completed', text: 'final text', isStreaming: false });
    expect(renders()).toBe(before + 11);
  });

  it('does not render at all when nothing changed (duplicates), and cancels its frame on unmount', () => {
    const frames = new ManualFrames();
    const client = new FakeSSEClient();
    const { hook, renders } = counted(client, { frames });
    act(() => burst(client, 0, 3));
    act(() => frames.flush());
    const after = renders();
    act(() => burst(client, 0, 3));
    expect(frames.pending).toBe(0);
    act(() => burst(client, 3, 1));
    hook.unmount();
    expect(frames.pending).toBe(0);
    expect(renders()).toBe(after);
  });

  it('works under StrictMode (double effects) without losing or doubling text', () => {
    const frames = new ManualFrames();
    const client = new FakeSSEClient();
    function Text() {
      return <p data-testid="text">{useGeneration(ID).text}</p>;
    }
    const view = render(
      <StrictMode>
        <SSEProvider client={client} scheduleFrame={frames.schedule}>
          <Text />
        </SSEProvider>
      </StrictMode>,
    );
    act(() => burst(client, 0, 5));
    act(() => frames.flush());
    expect(view.getByTestId('text').textContent).toBe('t0 t1 t2 t3 t4 ');
  });

  it('shows a restored text on its first render, for the id it belongs to only', () => {
    const client = new FakeSSEClient();
    const restored = { text: 'It was a ', seq: 2 };
    const wrapper = ({ children }: { children: ReactNode }) => <SSEProvider client={client}>{children}</SSEProvider>;
    const hook = renderHook(({ id }: { id: string }) => useGeneration(id, { restored: id === ID ? restored : null }), {
      wrapper,
      initialProps: { id: ID },
    });
    expect(hook.result.current).toMatchObject({ status: 'running', text: 'It was a ', seq: 2, isStreaming: true });
    hook.rerender({ id: 'g2' });
    expect(hook.result.current).toMatchObject({ generationId: 'g2', status: 'pending', text: '' });
  });

  it('reloads the generation once when a seq gap shows events were lost', async () => {
    const frames = new ManualFrames();
    const client = new FakeSSEClient();
    const loadGeneration = vi.fn(async (generationId: string) => ({
      generationId,
      status: 'running' as const,
      text: 't0 t1 t2 t3 ',
      seq: 3,
    }));
    const { hook } = counted(client, { frames, loaders: { loadGeneration } });
    act(() => {
      burst(client, 0, 1);
      burst(client, 4, 2); // 1..3 lost
    });
    act(() => frames.flush());
    expect(hook.result.current.needsRefetch).toBe(true);
    await vi.waitFor(() => expect(loadGeneration).toHaveBeenCalledTimes(1));
    await act(async () => {
      await Promise.resolve();
      frames.flush();
    });
    expect(hook.result.current).toMatchObject({ text: 't0 t1 t2 t3 t4 t5 ', needsRefetch: false });
    expect(loadGeneration.mock.calls[0]?.[0]).toBe(ID);
  });

  it('reloads an id it never heard of after a while, and retries a failed gap reload', async () => {
    vi.useFakeTimers();
    const frames = new ManualFrames();
    const client = new FakeSSEClient();
    const loadGeneration = vi
      .fn<StateLoaders['loadGeneration']>()
      .mockResolvedValueOnce({ generationId: ID, status: 'running', text: 'a' })
      .mockRejectedValueOnce(new Error('offline'))
      .mockResolvedValueOnce({ generationId: ID, status: 'completed', text: 'abcdef' });
    const { hook } = counted(client, { frames, loaders: { loadGeneration } });
    await act(async () => vi.advanceTimersByTimeAsync(3_000));
    act(() => frames.flush());
    expect(hook.result.current).toMatchObject({ status: 'running', text: 'a' });
    act(() => client.publish('ai.generation.delta', { generationId: ID, seq: 3, text: 'def' }));
    act(() => frames.flush());
    await act(async () => vi.advanceTimersByTimeAsync(0));
    expect(loadGeneration).toHaveBeenCalledTimes(2);
    await act(async () => vi.advanceTimersByTimeAsync(1_000));
    await act(async () => vi.advanceTimersByTimeAsync(0));
    act(() => frames.flush());
    expect(loadGeneration).toHaveBeenCalledTimes(3);
    expect(hook.result.current).toMatchObject({ status: 'completed', text: 'abcdef', needsRefetch: false });
  });
});
