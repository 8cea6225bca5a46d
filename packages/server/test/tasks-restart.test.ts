import { afterEach, describe, expect, it } from 'vitest';
import type { EventRecord } from '../src/core/event-record.js';
import { instanceTagOf, newTaskId } from '../src/core/job-id.js';
import { TASK_JOURNAL_TOPIC } from '../src/core/journal-events.js';
import { journalEntry } from '../src/services/tasks/task-log.js';
import { RESTART_ERROR } from '../src/services/tasks/task-runner.js';
import { restartFixture } from './helpers/restart-fixture.js';
import type { TestApp } from './helpers/test-app.js';

async function getTask(server: TestApp, token: string, id: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${server.url}/api/tasks/${id}`, { headers: { authorization: `Bearer ${token}` } });
  return (await response.json()) as Record<string, unknown>;
}

const outcomesIn = (events: EventRecord[], id: string) =>
  events.filter(
    (event) =>
      /^task\.(completed|failed|cancelled)$/.test(event.type) && (event.payload as { taskId: string }).taskId === id,
  );

/** A task survives a clean restart; none stays "running" forever when its process dies. */
describe('tasks across a restart (PGlite on disk)', () => {
  const fixture = restartFixture();
  afterEach(() => fixture.cleanup());
  const start = fixture.start;

  it('a clean shutdown hands a running task over; the next process continues it from its stage to completion', async () => {
    const dir = await fixture.dataDir('tasks-restart-');
    const first = await start(dir);
    const token = await first.token('u1');
    const response = await fetch(`${first.url}/api/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'demo', input: { stages: 3, stageMs: 300 } }),
    });
    const { taskId: id } = (await response.json()) as { taskId: string };
    const deadline = Date.now() + 15_000;
    while ((await getTask(first, token, id))['stage'] !== 'Stage 2') {
      if (Date.now() > deadline) throw new Error('not in stage 2 yet');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await fixture.stop(first);

    const second = await start(dir);
    const secondToken = await second.token('u1');
    // Right after the restart it is still running, from where it stood (not from 0 %).
    const resumed = await getTask(second, secondToken, id);
    expect(resumed).toMatchObject({ taskId: id, kind: 'demo', status: 'running' });
    expect(resumed['stageIndex']).toBeGreaterThanOrEqual(1);
    while ((await getTask(second, secondToken, id))['status'] === 'running') {
      if (Date.now() > deadline) throw new Error('not completed after the restart');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await getTask(second, secondToken, id)).toMatchObject({
      status: 'completed',
      percent: 100,
      result: { stages: 3 },
    });
    const stored = await second.app.realtime.internals.store.readAfter({ topics: ['user:u1'], after: 0, limit: 1000 });
    expect(outcomesIn(stored, id).map((event) => event.type)).toEqual(['task.completed']);
    // Stage starts are stored: each stage started once, in order, across both processes.
    const stages = stored
      .filter((event) => event.type === 'task.progress' && (event.payload as { taskId: string }).taskId === id)
      .map((event) => (event.payload as { stageIndex: number; percent: number }).stageIndex);
    expect([...new Set(stages)]).toEqual([0, 1, 2]);
    expect(stages).toEqual([...stages].sort((x, y) => x - y));
    const metrics = await (await fetch(`${second.url}/metrics`)).text();
    expect(metrics).toMatch(/tasks_total\{kind="demo",outcome="continued"\} 1/);
  });

  it('after a crash, the next process fails the tasks left running with their stage', async () => {
    const dir = await fixture.dataDir('tasks-crash-');
    // What a process that died mid-task leaves in the store: journal + stage starts, no outcome.
    const startedAt = Date.now() - 5_000;
    const crashed = newTaskId(instanceTagOf('crashed-process'), startedAt);
    const finished = newTaskId(instanceTagOf('crashed-process'), startedAt);
    const stages = ['Outline', 'Draft', 'Polish'];
    const progress = (taskId: string, stageIndex: number) => ({
      taskId,
      stage: stages[stageIndex],
      stageIndex,
      stageCount: 3,
      percent: Math.floor((stageIndex / 3) * 1000) / 10,
    });
    await fixture.leaveBehind(dir, startedAt, [
      [TASK_JOURNAL_TOPIC, 'journal.started', journalEntry(crashed, 'u1', { kind: 'outline-draft-polish', stages })],
      ['user:u1', 'task.progress', progress(crashed, 0)],
      ['user:u1', 'task.progress', progress(crashed, 1)],
      [TASK_JOURNAL_TOPIC, 'journal.started', journalEntry(finished, 'u2', { kind: 'demo', stages })],
      ['user:u2', 'task.completed', { taskId: finished, result: { ok: true } }],
    ]);

    const server = await start(dir);
    const stored = await server.app.realtime.internals.store.readAfter({
      topics: ['user:u1', 'user:u2'],
      after: 0,
      limit: 1000,
    });
    expect(outcomesIn(stored, crashed).map((event) => event.payload)).toEqual([
      { taskId: crashed, error: RESTART_ERROR, stage: 'Draft' },
    ]);
    expect(outcomesIn(stored, finished).map((event) => event.type)).toEqual(['task.completed']);
    expect(await getTask(server, await server.token('u1'), crashed)).toEqual({
      taskId: crashed,
      kind: 'outline-draft-polish',
      status: 'failed',
      stage: 'Draft',
      stageIndex: 1,
      stageCount: 3,
      percent: 33.3,
      error: RESTART_ERROR,
    });
    expect(await getTask(server, await server.token('u2'), finished)).toMatchObject({
      taskId: finished,
      kind: 'demo',
      status: 'completed',
      percent: 100,
      result: { ok: true },
    });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/tasks_total\{kind="outline-draft-polish",outcome="interrupted"\} 1/);
  });
});
