// @vitest-environment jsdom
import type { ConnectionSnapshot } from '@infinitescribe/client';
import { act, cleanup, renderHook } from '@testing-library/react';
import type { ReactNode } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SSEProvider } from './sse-provider.js';
import { FakeSSEClient } from '@infinitescribe/client/testing';
import { useSSEConnection } from './use-sse-connection.js';

const base = { attempt: 0, lastEventId: null, transport: 'fetch' } as const;

function setup() {
  const client = new FakeSSEClient();
  let renders = 0;
  const wrapper = ({ children }: { children: ReactNode }) => <SSEProvider client={client}>{children}</SSEProvider>;
  const hook = renderHook(
    () => {
      renders++;
      return useSSEConnection();
    },
    { wrapper },
  );
  const set = (snapshot: ConnectionSnapshot) => act(() => client.setSnapshot(snapshot));
  return { client, hook, set, renders: () => renders };
}

describe('useSSEConnection', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    cleanup();
    vi.useRealTimers();
  });

  it('re-renders on every state change with state, reason and derived flags', () => {
    const { hook, set, renders } = setup();
    expect(hook.result.current).toMatchObject({ state: 'closed', reason: 'not_started', isConnected: false });
    set({ ...base, state: 'connecting', reason: 'connect_called' });
    expect(hook.result.current.state).toBe('connecting');
    set({ ...base, state: 'open', reason: 'connected', connectionId: 'c1' });
    expect(hook.result.current).toMatchObject({ state: 'open', connectionId: 'c1', isConnected: true });
    set({ ...base, state: 'fallback', reason: 'stream_stalled', transport: 'long-poll' });
    expect(hook.result.current).toMatchObject({ isConnected: true, transport: 'long-poll' });
    expect(renders()).toBe(4);
  });

  it('counts the retry down in whole seconds while reconnecting, then stops', () => {
    const { hook, set } = setup();
    set({
      ...base,
      state: 'reconnecting',
      reason: 'network_error',
      attempt: 2,
      retryInMs: 3_200,
      retryAt: Date.now() + 3_200,
    });
    expect(hook.result.current).toMatchObject({ retryInSeconds: 4, retryInMs: 3_200, reason: 'network_error' });
    act(() => vi.advanceTimersByTime(300));
    expect(hook.result.current.retryInSeconds).toBe(3);
    act(() => vi.advanceTimersByTime(1_000));
    expect(hook.result.current.retryInSeconds).toBe(2);
    act(() => vi.advanceTimersByTime(2_000));
    expect(hook.result.current.retryInSeconds).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    set({ ...base, state: 'connecting', reason: 'connect_called' });
    expect(hook.result.current.retryInSeconds).toBeUndefined();
  });

  it('reconnect() asks the client to reconnect', () => {
    const { client, hook } = setup();
    act(() => hook.result.current.reconnect());
    expect(client.calls).toEqual(['connect', 'reconnect']);
  });
});
