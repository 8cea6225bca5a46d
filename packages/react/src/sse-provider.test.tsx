// @vitest-environment jsdom
import { act, cleanup, render, renderHook } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SSEProvider, useSSEClient } from './sse-provider.js';
import { FakeSSEClient } from '@infinitescribe/client/testing';
import { useSSEConnection } from './use-sse-connection.js';

afterEach(cleanup);

describe('SSEProvider', () => {
  it('tells how to fix a missing provider', () => {
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    expect(() => renderHook(() => useSSEClient())).toThrow(/Wrap your app in <SSEProvider/);
    expect(() => renderHook(() => useSSEConnection())).toThrow(/no SSE client here/);
    vi.restoreAllMocks();
  });

  it('connects a given client on mount, feeds the stores, and leaves it open on unmount', () => {
    const client = new FakeSSEClient();
    const { result, unmount } = renderHook(() => useSSEClient(), {
      wrapper: ({ children }) => <SSEProvider client={client}>{children}</SSEProvider>,
    });
    expect(result.current).toBe(client);
    expect(client.calls).toEqual(['connect']);
    expect(client.handlerCount('ai.generation.delta')).toBe(1);
    expect(client.handlerCount('task.progress')).toBe(1);
    unmount();
    expect(client.calls).toEqual(['connect']);
    expect(client.handlerCount('ai.generation.delta')).toBe(0);
  });

  it('creates its own client from options once, connects it, and closes it on unmount', async () => {
    const requests: string[] = [];
    const fetch = vi.fn((input: string) => {
      requests.push(input);
      return new Promise<Response>(() => undefined); // a stream that never answers
    });
    const getToken = vi.fn(async () => 'token');
    const options = { url: 'http://server.test', getToken, fetch, storage: null, signals: null };
    const seen: unknown[] = [];
    function Probe() {
      const client = useSSEClient();
      seen.push(client);
      return <span>{client.getSnapshot().state}</span>;
    }
    const { rerender, unmount } = render(
      <SSEProvider options={options}>
        <Probe />
      </SSEProvider>,
    );
    rerender(
      <SSEProvider options={{ ...options }}>
        <Probe />
      </SSEProvider>,
    );
    expect(new Set(seen).size).toBe(1);
    const client = seen[0] as ReturnType<typeof useSSEClient>;
    await vi.waitFor(() =>
      expect(requests.some((url) => url.startsWith('http://server.test/api/sse/stream'))).toBe(true),
    );
    expect(client.getSnapshot().state).toBe('connecting');
    act(() => unmount());
    expect(client.getSnapshot().state).toBe('closed');
  });
});
