// @vitest-environment jsdom
import type { ConnectionSnapshot } from '@infinitescribe/client';
import { SSEProvider } from '@infinitescribe/react';
import { FakeSSEClient } from '@infinitescribe/react/testing';
import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConnectionBadge } from './connection-badge.js';

afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

const base = { attempt: 1, lastEventId: null, transport: 'fetch' } as const;

describe('ConnectionBadge', () => {
  it('reads at a glance: connected, reconnecting in Ns (ticking), offline, fallback', () => {
    vi.useFakeTimers({ now: 50_000 });
    const client = new FakeSSEClient();
    render(
      <SSEProvider client={client}>
        <ConnectionBadge />
      </SSEProvider>,
    );
    const badge = () => screen.getByTestId('connection-badge');
    const set = (snapshot: ConnectionSnapshot) => act(() => client.setSnapshot(snapshot));

    set({ ...base, state: 'open', reason: 'connected' });
    expect(badge().dataset.state).toBe('open');
    expect(badge().textContent).toMatch(/^Connected/);

    set({ ...base, state: 'reconnecting', reason: 'network_error', retryInMs: 5_000, retryAt: 55_000 });
    expect(badge().textContent).toMatch(/^Reconnecting in 5s/);
    expect(badge().title).toBe('Connection lost: the network failed. Retrying automatically.');
    act(() => vi.advanceTimersByTime(2_000));
    expect(badge().textContent).toMatch(/^Reconnecting in 3s/);
    fireEvent.click(screen.getByRole('button', { name: 'Retry now' }));
    expect(client.calls.at(-1)).toBe('reconnect');

    set({ ...base, state: 'offline', reason: 'browser_offline' });
    expect(badge().textContent).toMatch(/^Offline/);
    set({ ...base, state: 'fallback', reason: 'stream_stalled', transport: 'long-poll' });
    expect(badge().textContent).toMatch(/^Fallback/);
    expect(screen.getByRole('status').textContent).toBe('Connected in fallback mode');
  });
});
