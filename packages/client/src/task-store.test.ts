import { describe, expect, it } from 'vitest';
import { TaskStore } from './task-store.js';
import { FakeSSEClient } from './testing/fake-sse-client.js';

const STAGES = ['Outline', 'Draft', 'Polish'];

function progress(client: FakeSSEClient, stageIndex: number, percent: number, message?: string) {
  client.publish('task.progress', {
    taskId: 't1',
    stage: STAGES[stageIndex] ?? 'Outline',
    stageIndex,
    stageCount: STAGES.length,
    percent,
    ...(message !== undefined ? { message } : {}),
  });
}

describe('TaskStore', () => {
  it('folds progress with a percent that never decreases and keeps the newest stage', () => {
    const client = new FakeSSEClient();
    const store = new TaskStore();
    store.attach(client);
    expect(store.get('t1')).toMatchObject({ status: 'pending', percent: 0 });
    progress(client, 0, 20, 'Outlining');
    progress(client, 1, 45, 'Drafting');
    progress(client, 0, 30, 'late outline event');
    progress(client, 1, 40);
    expect(store.get('t1')).toMatchObject({ status: 'running', stage: 'Draft', stageIndex: 1, percent: 45 });
    expect(store.get('t1').message).toBeUndefined();
    progress(client, 2, 90, 'Polishing');
    client.publish('task.completed', { taskId: 't1', result: { text: 'done' } });
    expect(store.get('t1')).toMatchObject({
      status: 'completed',
      percent: 100,
      result: { text: 'done' },
      stage: 'Polish',
    });
    progress(client, 2, 95);
    expect(store.get('t1').status).toBe('completed');
  });

  it('records failures with their stage', () => {
    const client = new FakeSSEClient();
    const store = new TaskStore();
    store.attach(client);
    progress(client, 1, 50);
    client.publish('task.failed', { taskId: 't1', error: 'model unavailable', stage: 'Draft' });
    expect(store.get('t1')).toMatchObject({
      status: 'failed',
      error: 'model unavailable',
      percent: 50,
      isTerminal: true,
    });
  });

  it('ends on cancelled and ignores progress after it', () => {
    const client = new FakeSSEClient();
    const store = new TaskStore();
    store.attach(client);
    progress(client, 0, 20);
    client.publish('task.cancelled', { taskId: 't1' });
    progress(client, 1, 40);
    expect(store.get('t1')).toMatchObject({ status: 'cancelled', percent: 20, isTerminal: true });
  });

  it('marks running tasks stale on reset, and a reload never lowers the percent', () => {
    const client = new FakeSSEClient();
    const store = new TaskStore();
    store.attach(client);
    progress(client, 1, 60);
    client.emit('reset', { reason: 'unknown_id' });
    expect(store.get('t1').needsRefetch).toBe(true);
    const view = { taskId: 't1', kind: 'outline-draft-polish', stage: 'Draft', stageIndex: 1, stageCount: 3 };
    store.applyView({ ...view, status: 'running', percent: 55 });
    expect(store.get('t1')).toMatchObject({ percent: 60, needsRefetch: false });
    store.applyView({ ...view, stage: 'Polish', stageIndex: 2, status: 'completed', percent: 100, result: 'ok' });
    expect(store.get('t1')).toMatchObject({ status: 'completed', percent: 100, result: 'ok' });
  });
});
