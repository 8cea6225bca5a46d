import { describe, expect, it, vi } from 'vitest';
import { createHttpStateLoaders } from './state-loaders.js';
import type { FetchLike } from './transport.js';

function loadersAnswering(...answers: { status: number; body: unknown }[]) {
  const fetch = vi.fn<FetchLike>(async () => {
    const answer = answers.shift() ?? { status: 500, body: {} };
    return new Response(JSON.stringify(answer.body), { status: answer.status });
  });
  const getToken = vi.fn(async ({ forceRefresh }: { forceRefresh: boolean }) => (forceRefresh ? 'fresh' : 'old'));
  return { loaders: createHttpStateLoaders({ url: 'http://api', getToken, fetch }), fetch, getToken };
}

const signal = new AbortController().signal;

describe('createHttpStateLoaders', () => {
  it("passes the generation view's seq through, so the store needs no guess", async () => {
    const view = { generationId: 'g 1', status: 'running', text: 'It was', seq: 3 };
    const { loaders, fetch } = loadersAnswering({ status: 200, body: view });
    await expect(loaders.loadGeneration('g 1', signal)).resolves.toEqual(view);
    expect(fetch.mock.calls[0]?.[0]).toBe('http://api/api/ai/generations/g%201');
  });

  it('accepts a view from a server that does not send seq yet', async () => {
    const view = { generationId: 'g1', status: 'completed', text: 'done' };
    const { loaders } = loadersAnswering({ status: 200, body: view });
    await expect(loaders.loadGeneration('g1', signal)).resolves.toEqual(view);
  });

  it('retries a 401 once with a fresh token', async () => {
    const view = { generationId: 'g1', status: 'running', text: '', seq: -1 };
    const { loaders, fetch, getToken } = loadersAnswering({ status: 401, body: {} }, { status: 200, body: view });
    await loaders.loadGeneration('g1', signal);
    expect(getToken.mock.calls).toEqual([[{ forceRefresh: false }], [{ forceRefresh: true }]]);
    expect(fetch.mock.calls[1]?.[1]?.headers).toMatchObject({ authorization: 'Bearer fresh' });
  });

  it('refuses answers that are not the protocol views', async () => {
    const { loaders } = loadersAnswering(
      { status: 200, body: { generationId: 'g1', status: 'running', text: 'x', seq: '3' } },
      { status: 200, body: { taskId: 't1', status: 'running', percent: 5 } },
      { status: 404, body: { error: { code: 'not_found', message: 'no' } } },
    );
    await expect(loaders.loadGeneration('g1', signal)).rejects.toThrow(/unexpected generation answer/);
    await expect(loaders.loadTask('t1', signal)).rejects.toThrow(/unexpected task answer/);
    await expect(loaders.loadTask('t1', signal)).rejects.toThrow(/HTTP 404/);
  });

  it('loads a task view', async () => {
    const view = {
      taskId: 't1',
      kind: 'demo',
      status: 'running',
      stage: 'Draft',
      stageIndex: 1,
      stageCount: 3,
      percent: 40,
    };
    const { loaders } = loadersAnswering({ status: 200, body: view });
    await expect(loaders.loadTask('t1', signal)).resolves.toEqual(view);
  });
});
