// @vitest-environment jsdom
import type { EnvelopeWithId } from '@infinitescribe/client';
import { act, cleanup, renderHook } from '@testing-library/react';
import type { ReactNode } from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SSEProvider } from './sse-provider.js';
import { FakeSSEClient } from '@infinitescribe/client/testing';
import { useEventSubscription } from './use-event-subscription.js';

afterEach(cleanup);

function wrapperFor(client: FakeSSEClient) {
  return ({ children }: { children: ReactNode }) => <SSEProvider client={client}>{children}</SSEProvider>;
}

describe('useEventSubscription', () => {
  it('delivers typed events of its type only, through the latest handler, without resubscribing', () => {
    const client = new FakeSSEClient();
    const titles: string[] = [];
    const on = vi.spyOn(client, 'on');
    const { rerender, unmount } = renderHook(
      ({ prefix }: { prefix: string }) =>
        useEventSubscription('notification', (event) => titles.push(`${prefix}${event.payload.title}`)),
      { wrapper: wrapperFor(client), initialProps: { prefix: 'a:' } },
    );
    act(() => client.publish('notification', { title: 'one', level: 'info' }));
    rerender({ prefix: 'b:' });
    act(() => client.publish('notification', { title: 'two', level: 'success' }));
    act(() => client.publish('task.completed', { taskId: 't1' }));
    expect(titles).toEqual(['a:one', 'b:two']);
    expect(on.mock.calls.filter(([key]) => key === 'notification')).toHaveLength(1);
    unmount();
    expect(client.handlerCount('notification')).toBe(0);
  });

  it("delivers the app's own event types, typed by its map", () => {
    type AppEvents = { 'comment.added': { docId: string; text: string } };
    const client = new FakeSSEClient<AppEvents>();
    const texts: string[] = [];
    renderHook(
      () =>
        useEventSubscription<AppEvents, 'comment.added'>('comment.added', (event) =>
          texts.push(`${event.topic}:${event.payload.text}`),
        ),
      {
        wrapper: ({ children }: { children: ReactNode }) => (
          <SSEProvider<AppEvents> client={client}>{children}</SSEProvider>
        ),
      },
    );
    act(() => client.publish('comment.added', { docId: '42', text: 'hi' }, 'doc:42'));
    expect(texts).toEqual(['doc:42:hi']);
  });

  it('applies the filter', () => {
    const client = new FakeSSEClient();
    const seen: EnvelopeWithId<'task.progress'>[] = [];
    renderHook(
      () =>
        useEventSubscription(
          'task.progress',
          (event) => seen.push(event),
          (event) => event.payload.taskId === 'mine',
        ),
      { wrapper: wrapperFor(client) },
    );
    const progress = { stage: 'Draft', stageIndex: 1, stageCount: 3, percent: 50 };
    act(() => client.publish('task.progress', { taskId: 'other', ...progress }));
    act(() => client.publish('task.progress', { taskId: 'mine', ...progress }));
    expect(seen.map((event) => event.payload.taskId)).toEqual(['mine']);
  });

  it('subscribes to client events and resubscribes when the type changes', () => {
    const client = new FakeSSEClient();
    const handler = vi.fn();
    const { rerender } = renderHook(({ type }: { type: 'reset' | 'resumed' }) => useEventSubscription(type, handler), {
      wrapper: wrapperFor(client),
      initialProps: { type: 'reset' as 'reset' | 'resumed' },
    });
    act(() => client.emit('reset', { reason: 'gap', since: '5' }));
    rerender({ type: 'resumed' });
    expect(client.handlerCount('reset')).toBe(2); // the provider's two stores only
    act(() => client.emit('resumed', { replayed: 0, complete: true }));
    expect(handler.mock.calls).toEqual([[{ reason: 'gap', since: '5' }], [{ replayed: 0, complete: true }]]);
  });
});
