import type { EventPayload } from '@infinitescribe/protocol';
import type { EventSourceMessage } from 'eventsource-parser';
import { afterEach, describe, expect, it } from 'vitest';
import { ofType, openStream, published, type StreamReader } from './helpers/sse-reader.js';
import { expectJsonError } from './helpers/http-assertions.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

type Progress = EventPayload<'task.progress'>;

/** `route` is "<METHOD> <path>". */
async function api(
  server: TestApp,
  token: string | undefined,
  route: `${'GET' | 'POST'} /${string}`,
  body?: unknown,
): Promise<Response> {
  const [method, path] = route.split(' ') as [string, string];
  const headers: Record<string, string> = {};
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  return fetch(`${server.url}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function json(response: Response): Promise<Record<string, unknown>> {
  return (await response.json()) as Record<string, unknown>;
}

async function startTask(server: TestApp, token: string, body: Record<string, unknown>): Promise<string> {
  const response = await api(server, token, 'POST /api/tasks', body);
  const answer = await json(response);
  expect(response.status, JSON.stringify(answer)).toBe(202);
  return answer['taskId'] as string;
}

const getTask = async (server: TestApp, token: string, id: string) =>
  json(await api(server, token, `GET /api/tasks/${id}`));

/** The `task.*` events of task `id`, in arrival order, with their ids. */
function taskEvents(events: readonly EventSourceMessage[], id: string) {
  return published(events)
    .filter((event) => event.event?.startsWith('task.'))
    .map((event) => ({
      id: event.id as string,
      type: event.event as string,
      payload: (JSON.parse(event.data) as { payload: Record<string, unknown> }).payload,
    }))
    .filter((event) => event.payload['taskId'] === id);
}

const progressOf = (events: readonly EventSourceMessage[], id: string) =>
  taskEvents(events, id)
    .filter((event) => event.type === 'task.progress')
    .map((event) => event.payload as Progress);

const outcomeOf = (events: readonly EventSourceMessage[], id: string) =>
  taskEvents(events, id).find((event) => /^task\.(completed|failed|cancelled)$/.test(event.type));

async function untilOutcome(stream: StreamReader, id: string, timeoutMs = 30_000) {
  await stream.waitFor((events) => outcomeOf(events, id) !== undefined, timeoutMs);
  return outcomeOf(stream.events, id) as NonNullable<ReturnType<typeof outcomeOf>>;
}

async function waitForStatus(server: TestApp, token: string, id: string, status: string) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const view = await getTask(server, token, id);
    if (view['status'] === status) return view;
    if (Date.now() > deadline) throw new Error(`still ${JSON.stringify(view)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function expectWellFormedProgress(progress: readonly Progress[]): void {
  expect(progress.length).toBeGreaterThan(0);
  for (const [index, update] of progress.entries()) {
    expect(update.stageIndex).toBeLessThan(update.stageCount);
    expect(update.percent).toBeGreaterThanOrEqual(0);
    expect(update.percent).toBeLessThanOrEqual(100);
    if (index > 0) {
      expect(update.percent).toBeGreaterThanOrEqual(progress[index - 1]?.percent ?? 0);
      expect(update.stageIndex).toBeGreaterThanOrEqual(progress[index - 1]?.stageIndex ?? 0);
    }
  }
}

const established = (stream: StreamReader) =>
  stream.waitFor((events) => events.some((event) => event.event === 'connection.established'));

describe('tasks over HTTP + SSE', () => {
  let server: TestApp | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('lists the kinds with their stages and input schema', async () => {
    server = await startTestApp();
    await expectJsonError(await api(server, undefined, 'GET /api/tasks/kinds'), 401, 'unauthorized');
    const response = await api(server, await server.token('u1'), 'GET /api/tasks/kinds');
    expect(response.status).toBe(200);
    const { kinds } = (await response.json()) as {
      kinds: { kind: string; description: string; stages: string[]; input: { properties?: object } }[];
    };
    expect(kinds.map((kind) => kind.kind)).toEqual(['demo', 'outline-draft-polish']);
    expect(kinds[0]?.stages).toEqual(['Stage 1', 'Stage 2', 'Stage 3']);
    expect(Object.keys(kinds[0]?.input.properties ?? {})).toEqual(['stages', 'stageMs', 'failAtStage']);
    expect(kinds[1]?.stages).toEqual(['Outline', 'Draft', 'Polish']);
    expect(Object.keys(kinds[1]?.input.properties ?? {})).toContain('prompt');
    for (const kind of kinds) expect(kind.description).not.toBe('');
  });

  it('runs a demo task: monotonic progress through every stage to 100 %, then completed', async () => {
    server = await startTestApp();
    const token = await server.token('u1');
    const stream = await openStream(server.url, { token });
    await established(stream);
    const id = await startTask(server, token, { kind: 'demo', input: { stages: 3, stageMs: 300 } });
    expect(id).toMatch(/^task-/);

    const outcome = await untilOutcome(stream, id);
    expect(outcome.type).toBe('task.completed');
    expect(outcome.payload).toEqual({ taskId: id, result: { stages: 3 } });
    const progress = progressOf(stream.events, id);
    expectWellFormedProgress(progress);
    expect(progress.map((update) => update.stageCount)).toEqual(progress.map(() => 3));
    expect([...new Set(progress.map((update) => update.stage))]).toEqual(['Stage 1', 'Stage 2', 'Stage 3']);
    expect(progress[0]).toMatchObject({ stageIndex: 0, percent: 0 });
    expect(progress.at(-1)).toMatchObject({ stage: 'Stage 3', stageIndex: 2, percent: 100 });
    // Throttled to ~10 per second, but more than the stage boundaries.
    expect(progress.length).toBeGreaterThan(3);
    expect(progress.length).toBeLessThan(30);
    // The outcome comes last.
    expect(taskEvents(stream.events, id).at(-1)?.type).toBe('task.completed');

    expect(await getTask(server, token, id)).toMatchObject({
      taskId: id,
      kind: 'demo',
      status: 'completed',
      stage: 'Stage 3',
      percent: 100,
      result: { stages: 3 },
    });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/tasks_total\{kind="demo",outcome="completed"\} 1/);
    stream.close();
  });

  it('runs outline-draft-polish on the offline provider: three AI stages and a result', async () => {
    server = await startTestApp({ AI_OFFLINE_TOKENS_PER_SECOND: '2000' });
    const token = await server.token('u1');
    const stream = await openStream(server.url, { token });
    await established(stream);
    const id = await startTask(server, token, {
      kind: 'outline-draft-polish',
      input: { prompt: 'A lighthouse keeper who collects letters', maxTokens: 60 },
    });

    const outcome = await untilOutcome(stream, id);
    expect(outcome.type).toBe('task.completed');
    const result = outcome.payload['result'] as { outline: string; draft: string; polished: string };
    for (const text of [result.outline, result.draft, result.polished]) expect(text.trim().length).toBeGreaterThan(0);
    const progress = progressOf(stream.events, id);
    expectWellFormedProgress(progress);
    expect([...new Set(progress.map((update) => update.stage))]).toEqual(['Outline', 'Draft', 'Polish']);
    expect(new Set(progress.map((update) => update.stageCount))).toEqual(new Set([3]));
    expect(progress.at(-1)?.percent).toBe(100);
    // Progress within stages (token counts), not only at their boundaries.
    expect(progress.some((update) => update.percent % (100 / 3) > 1)).toBe(true);
    expect(await getTask(server, token, id)).toMatchObject({ status: 'completed', percent: 100, result });
    stream.close();
  });

  it('cancels a running task: task.cancelled, then no more progress', async () => {
    server = await startTestApp();
    const token = await server.token('u1');
    const stream = await openStream(server.url, { token });
    await established(stream);
    const id = await startTask(server, token, { kind: 'demo', input: { stages: 2, stageMs: 5_000 } });
    await stream.waitFor((events) => progressOf(events, id).length >= 3);
    expect(await getTask(server, token, id)).toMatchObject({ status: 'running', stage: 'Stage 1', stageCount: 2 });

    const cancel = await api(server, token, `POST /api/tasks/${id}/cancel`);
    expect(cancel.status).toBe(202);
    expect(await json(cancel)).toEqual({ taskId: id });
    const outcome = await untilOutcome(stream, id);
    expect(outcome).toMatchObject({ type: 'task.cancelled', payload: { taskId: id } });
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(taskEvents(stream.events, id).at(-1)?.type).toBe('task.cancelled');
    expect(taskEvents(stream.events, id).filter((event) => event.type === 'task.cancelled')).toHaveLength(1);
    expect(await getTask(server, token, id)).toMatchObject({ status: 'cancelled', stage: 'Stage 1' });
    // Cancelling a finished task changes nothing.
    expect((await api(server, token, `POST /api/tasks/${id}/cancel`)).status).toBe(202);
    expect((await getTask(server, token, id))['status']).toBe('cancelled');
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/tasks_total\{kind="demo",outcome="cancelled"\} 1/);
    stream.close();
  });

  it('fails a task in the stage that threw: task.failed with the stage', async () => {
    server = await startTestApp();
    const token = await server.token('u1');
    const stream = await openStream(server.url, { token });
    await established(stream);
    const id = await startTask(server, token, { kind: 'demo', input: { stages: 3, stageMs: 200, failAtStage: 1 } });
    const outcome = await untilOutcome(stream, id);
    expect(outcome.type).toBe('task.failed');
    expect(outcome.payload).toEqual({ taskId: id, error: 'demo failure in Stage 2 (failAtStage)', stage: 'Stage 2' });
    const progress = progressOf(stream.events, id);
    expectWellFormedProgress(progress);
    expect(progress.at(-1)?.stage).toBe('Stage 2');
    expect(progress.at(-1)?.percent).toBeLessThan(67);
    expect(await getTask(server, token, id)).toMatchObject({
      status: 'failed',
      stage: 'Stage 2',
      error: 'demo failure in Stage 2 (failAtStage)',
    });
    stream.close();
  });

  it('refuses unknown kinds and bad input with 400, and hides tasks from other users', async () => {
    server = await startTestApp();
    const token = await server.token('u1');
    const unknown = await expectJsonError(
      await api(server, token, 'POST /api/tasks', { kind: 'nope' }),
      400,
      'invalid_request',
    );
    expect(unknown.error.message).toContain('demo, outline-draft-polish');
    const tooMany = await expectJsonError(
      await api(server, token, 'POST /api/tasks', { kind: 'demo', input: { stages: 0 } }),
      400,
      'invalid_request',
    );
    expect(tooMany.error.message).toContain('stages');
    const failAt = await expectJsonError(
      await api(server, token, 'POST /api/tasks', { kind: 'demo', input: { stages: 2, failAtStage: 2 } }),
      400,
      'invalid_request',
    );
    expect(failAt.error.message).toContain('failAtStage must be less than stages');
    const noPrompt = await expectJsonError(
      await api(server, token, 'POST /api/tasks', { kind: 'outline-draft-polish', input: {} }),
      400,
      'invalid_request',
    );
    expect(noPrompt.error.message).toContain('prompt');
    await expectJsonError(
      await api(server, token, 'POST /api/tasks', { kind: 'demo', extra: 1 }),
      400,
      'invalid_request',
    );
    await expectJsonError(await api(server, token, 'POST /api/tasks'), 400, 'invalid_request');
    await expectJsonError(await api(server, undefined, 'POST /api/tasks', { kind: 'demo' }), 401, 'unauthorized');
    await expectJsonError(await api(server, token, 'GET /api/tasks/task-nope'), 404, 'not_found');

    const id = await startTask(server, token, { kind: 'demo', input: { stages: 1, stageMs: 0 } });
    const other = await server.token('u2');
    await expectJsonError(await api(server, other, `GET /api/tasks/${id}`), 404, 'not_found');
    await expectJsonError(await api(server, other, `POST /api/tasks/${id}/cancel`), 404, 'not_found');
    await waitForStatus(server, token, id, 'completed');
  });

  it('queues past the per-user limit: queued, running, completed; a queued task can be cancelled', async () => {
    server = await startTestApp({ TASK_MAX_CONCURRENT_PER_USER: '1', TASK_MAX_QUEUED_PER_USER: '2' });
    const token = await server.token('u1');
    const stream = await openStream(server.url, { token });
    await established(stream);
    const first = await startTask(server, token, { kind: 'demo', input: { stages: 1, stageMs: 600 } });
    const second = await startTask(server, token, { kind: 'demo', input: { stages: 2, stageMs: 100 } });
    const third = await startTask(server, token, { kind: 'demo', input: { stages: 1, stageMs: 100 } });
    await expectJsonError(await api(server, token, 'POST /api/tasks', { kind: 'demo' }), 429, 'rate_limited');
    expect(await getTask(server, token, first)).toMatchObject({ status: 'running', kind: 'demo' });
    expect(await getTask(server, token, second)).toEqual({
      taskId: second,
      kind: 'demo',
      status: 'queued',
      stage: 'Stage 1',
      stageIndex: 0,
      stageCount: 2,
      percent: 0,
    });
    expect((await api(server, token, `POST /api/tasks/${third}/cancel`)).status).toBe(202);
    expect((await getTask(server, token, third))['status']).toBe('cancelled');

    await untilOutcome(stream, second);
    expect(outcomeOf(stream.events, first)?.type).toBe('task.completed');
    expect(outcomeOf(stream.events, second)?.type).toBe('task.completed');
    expect(outcomeOf(stream.events, third)?.type).toBe('task.cancelled');
    // The queued one started only after the first had finished, and the cancelled one never ran.
    const firstDone = outcomeOf(stream.events, first)?.id ?? '';
    const secondStart = taskEvents(stream.events, second)[0]?.id ?? '';
    expect(BigInt(secondStart)).toBeGreaterThan(BigInt(firstDone));
    expect(progressOf(stream.events, third)).toEqual([]);
    stream.close();
  });

  it('replays only the latest progress of a running task on resume', async () => {
    server = await startTestApp({ TASK_PROGRESS_INTERVAL_MS: '50' });
    const token = await server.token('u1');
    const first = await openStream(server.url, { token });
    await established(first);
    const id = await startTask(server, token, { kind: 'demo', input: { stages: 2, stageMs: 2_000 } });
    await first.waitFor((events) => progressOf(events, id).length >= 2);
    first.close();
    const lastId = published(first.events).at(-1)?.id as string;
    const lastPercent = progressOf(first.events, id).at(-1)?.percent ?? 0;

    // Several progress events (and a stage boundary) go by while disconnected.
    const topic = 'user:u1';
    const { bus } = server.app.realtime.internals;
    const missed = async () =>
      (await bus.read([topic], Number(lastId), 10_000)).events.filter((event) => event.type === 'task.progress');
    const deadline = Date.now() + 20_000;
    while ((await missed()).length < 5 || !(await missed()).some((event) => (event.payload as Progress).stageIndex)) {
      if (Date.now() > deadline) throw new Error('no progress while disconnected');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }

    const second = await openStream(server.url, { token, lastEventId: lastId });
    await second.waitFor((events) => events.some((event) => event.event === 'stream.resumed'));
    const resumedAt = second.events.findIndex((event) => event.event === 'stream.resumed');
    const replay = second.events.slice(0, resumedAt);
    const replayed = progressOf(replay, id);
    expect(replayed).toHaveLength(1);
    expect(replayed[0]?.percent).toBeGreaterThan(lastPercent);
    expect(replayed[0]?.stageIndex).toBe(1);
    // It is the latest progress the hot log held up to its id, and it keeps its own id.
    const replayedId = published(replay).at(-1)?.id as string;
    const upTo = (await missed()).filter((event) => event.id <= Number(replayedId));
    expect(String(upTo.at(-1)?.id)).toBe(replayedId);
    expect(upTo.at(-1)?.payload).toEqual(replayed[0]);
    expect(ofType<{ replayed: number; complete: boolean }>(second.events, 'stream.resumed')).toEqual([
      { replayed: 1, complete: true },
    ]);
    // Live progress follows, still monotonic across the seam.
    await second.waitFor((events) => progressOf(events, id).length >= 3);
    expectWellFormedProgress([...progressOf(first.events, id), ...progressOf(second.events, id)]);
    expect((await api(server, token, `POST /api/tasks/${id}/cancel`)).status).toBe(202);
    await untilOutcome(second, id);
    second.close();
  });
});
