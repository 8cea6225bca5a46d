// @vitest-environment jsdom
import { act, cleanup, renderHook } from '@testing-library/react';
import type { ReactNode } from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SSEProvider } from './sse-provider.js';
import type { StateLoaders } from '@infinitescribe/client';
import { FakeSSEClient } from '@infinitescribe/client/testing';
import { useTaskProgress } from './use-task-progress.js';

afterEach(cleanup);

function setup(loaders: Partial<StateLoaders> = {}) {
  const client = new FakeSSEClient();
  const wrapper = ({ children }: { children: ReactNode }) => (
    <SSEProvider client={client} loaders={loaders}>
      {children}
    </SSEProvider>
  );
  const hook = renderHook(({ id }: { id: string | null }) => useTaskProgress(id), {
    wrapper,
    initialProps: { id: 't1' as string | null },
  });
  const send = (stageIndex: number, percent: number) =>
    act(() =>
      client.publish('task.progress', {
        taskId: 't1',
        stage: ['Outline', 'Draft', 'Polish'][stageIndex] ?? '?',
        stageIndex,
        stageCount: 3,
        percent,
        message: `at ${percent}`,
      }),
    );
  return { client, hook, send };
}

describe('useTaskProgress', () => {
  it('shows a percent that never goes back, with stage and message', () => {
    const { hook, send } = setup();
    expect(hook.result.current).toMatchObject({ status: 'pending', percent: 0, isRunning: true });
    const seen: number[] = [];
    for (const [stage, percent] of [
      [0, 10],
      [0, 33],
      [1, 30],
      [1, 50],
      [1, 48],
      [2, 90],
    ] as const) {
      send(stage, percent);
      seen.push(hook.result.current.percent);
    }
    expect(seen).toEqual([10, 33, 33, 50, 50, 90]);
    expect(hook.result.current).toMatchObject({ stage: 'Polish', stageIndex: 2, stageCount: 3, message: 'at 90' });
  });

  it('ends at 100 on completed and is idle without an id', () => {
    const { client, hook, send } = setup();
    send(2, 95);
    act(() => client.publish('task.completed', { taskId: 't1', result: 'Outline, draft and polish done' }));
    expect(hook.result.current).toMatchObject({ status: 'completed', percent: 100, isRunning: false });
    hook.rerender({ id: null });
    expect(hook.result.current).toMatchObject({ status: 'idle', percent: 0, isRunning: false });
  });

  it('reloads the task after a stream reset', async () => {
    const loadTask = vi.fn<StateLoaders['loadTask']>(async (taskId) => ({
      taskId,
      kind: 'outline-draft-polish',
      status: 'running',
      stage: 'Polish',
      stageIndex: 2,
      stageCount: 3,
      percent: 80,
    }));
    const { client, hook, send } = setup({ loadTask });
    send(1, 40);
    act(() => client.emit('reset', { reason: 'gap', since: '9' }));
    await vi.waitFor(() =>
      expect(hook.result.current).toMatchObject({ stage: 'Polish', percent: 80, needsRefetch: false }),
    );
    expect(loadTask).toHaveBeenCalledTimes(1);
  });
});
