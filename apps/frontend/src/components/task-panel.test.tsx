// @vitest-environment jsdom
import { SSEProvider } from '@infinitescribe/react';
import { FakeSSEClient } from '@infinitescribe/react/testing';
import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError, type ApiClient } from '../lib/api-client.js';
import { TaskPanel } from './task-panel.js';
import { ToastProvider } from './toasts.js';

afterEach(cleanup);

function setup(post: ApiClient['post']) {
  const client = new FakeSSEClient();
  const onInsert = vi.fn();
  const api: ApiClient = { get: vi.fn(), post: vi.fn(post) };
  render(
    <ToastProvider>
      <SSEProvider client={client}>
        <TaskPanel api={api} document="Notes about lighthouses" onInsert={onInsert} />
      </SSEProvider>
    </ToastProvider>,
  );
  return { client, api, onInsert };
}

describe('TaskPanel', () => {
  it('shows stage-aware progress that never goes back, then the result', async () => {
    const { client, api, onInsert } = setup(async () => ({ taskId: 't1' }));
    await act(async () => fireEvent.click(screen.getByTestId('task-start')));
    expect(api.post).toHaveBeenCalledWith('/api/tasks', {
      kind: 'outline-draft-polish',
      input: { prompt: 'Notes about lighthouses' },
    });
    const bar = screen.getByRole('progressbar', { name: 'Outline, draft and polish' });
    const progress = (stageIndex: number, percent: number, message: string) =>
      act(() =>
        client.publish('task.progress', {
          taskId: 't1',
          stage: ['Outline', 'Draft', 'Polish'][stageIndex] ?? '',
          stageIndex,
          stageCount: 3,
          percent,
          message,
        }),
      );
    progress(1, 45.5, 'Drafting paragraph 2');
    expect(bar.getAttribute('aria-valuenow')).toBe('46');
    expect(bar.getAttribute('aria-valuetext')).toBe('Draft (step 2 of 3), 46%, Drafting paragraph 2');
    expect(screen.getByText('Draft').closest('li')?.getAttribute('aria-current')).toBe('step');
    progress(1, 40, 'late');
    expect(bar.getAttribute('aria-valuenow')).toBe('46');
    act(() => client.publish('task.completed', { taskId: 't1', result: { text: 'A polished passage.' } }));
    expect(bar.getAttribute('aria-valuenow')).toBe('100');
    fireEvent.click(screen.getByRole('button', { name: 'Insert into document' }));
    expect(onInsert).toHaveBeenCalledWith('A polished passage.');
  });

  it('says so when the server has no tasks yet', async () => {
    setup(async () => {
      throw new ApiError('Route POST:/api/tasks not found', 404, 'not_found');
    });
    await act(async () => fireEvent.click(screen.getByTestId('task-start')));
    expect(screen.getByText('Multi-stage tasks are not available on this server yet.')).toBeTruthy();
    expect(screen.getByTestId('task-start')).toHaveProperty('disabled', true);
  });
});
