import { afterEach, describe, expect, it } from 'vitest';
import { CONTINUE_INSTRUCTION } from '../src/adapters/ai/ai-provider.js';
import { FAKE_REPLY, FakeOpenAIServer } from '../src/adapters/ai/testing/fake-openai-server.js';
import { instanceTagOf, newGenerationId } from '../src/core/job-id.js';
import { RESTART_ERROR } from '../src/services/generations/generation-service.js';
import type { EventRecord } from '../src/core/event-record.js';
import { GENERATION_JOURNAL_TOPIC } from '../src/core/journal-events.js';
import { callAs, pollUntil } from './helpers/api-call.js';
import { restartFixture } from './helpers/restart-fixture.js';
import type { TestApp } from './helpers/test-app.js';

/** `GET /api/ai/generations/:id` as `userId`. */
async function viewOf(server: TestApp, id: string, userId = 'u1'): Promise<Record<string, unknown>> {
  return (await callAs(server.url, userId, `GET /api/ai/generations/${id}`)).body;
}

/** Starts a generation as u1; resolves with its id. */
async function startGeneration(server: TestApp, body: Record<string, unknown>): Promise<string> {
  const response = await callAs(server.url, 'u1', 'POST /api/ai/generations', body);
  expect(response.status, JSON.stringify(response.body)).toBe(202);
  return response.body['generationId'] as string;
}

/** The text of a running generation, once it has some. */
async function firstText(server: TestApp, id: string): Promise<string> {
  let text = '';
  await pollUntil(async () => (text = String((await viewOf(server, id))['text'])) !== '', 'the first text');
  return text;
}

/** The generation once it is no longer running. */
async function finished(server: TestApp, id: string): Promise<Record<string, unknown>> {
  let view: Record<string, unknown> = {};
  await pollUntil(async () => (view = await viewOf(server, id))['status'] !== 'running', 'the generation to end');
  return view;
}

const outcomesIn = (events: EventRecord[], id: string) =>
  events.filter(
    (event) =>
      /^ai\.generation\.(completed|failed|cancelled)$/.test(event.type) &&
      (event.payload as { generationId: string }).generationId === id,
  );

/** No generation stays "running" forever when the process running it goes away. */
describe('AI generations across a restart (PGlite on disk)', () => {
  const fixture = restartFixture();
  afterEach(() => fixture.cleanup());
  const start = fixture.start;

  it('a clean shutdown hands running generations over; the next process completes them', async () => {
    const dir = await fixture.dataDir('ai-restart-');
    const first = await start(dir, { AI_OFFLINE_TOKENS_PER_SECOND: '5' });
    const id = await startGeneration(first, { prompt: 'A long story, slowly', maxTokens: 30 });
    const before = await firstText(first, id);
    await fixture.stop(first);

    // Another process on the same data: it finds the checkpoint and goes on from there.
    const second = await start(dir, { AI_OFFLINE_TOKENS_PER_SECOND: '500' });
    const view = await finished(second, id);
    expect(view['status']).toBe('completed');
    const text = String(view['text']);
    expect(text.startsWith(before)).toBe(true);
    expect(text.length).toBeGreaterThan(before.length);
    const stored = await second.app.realtime.internals.store.readAfter({ topics: ['user:u1'], after: 0, limit: 1000 });
    const outcomes = outcomesIn(stored, id);
    expect(outcomes.map((event) => event.payload)).toEqual([{ generationId: id, text, usage: expect.anything() }]);
    // The checkpoint is stored, so a client whose hot log died with the first process replays it.
    const snapshots = stored.filter((event) => event.type === 'ai.generation.snapshot');
    expect(snapshots).toHaveLength(1);
    expect(text.startsWith((snapshots[0]?.payload as { text: string }).text)).toBe(true);
    const metrics = await (await fetch(`${second.url}/metrics`)).text();
    expect(metrics).toMatch(/ai_generations_total\{outcome="continued"\} 1/);
  });

  it('a conversation is handed over with its messages: the next process asks for the rest of the same reply', async () => {
    const fake = await FakeOpenAIServer.start({ chunkDelayMs: 150 });
    try {
      const dir = await fixture.dataDir('ai-restart-chat-');
      const env = { AI_BASE_URL: fake.baseUrl, AI_MODEL: 'fake-model', AI_MODELS: 'fake-model-large' };
      const first = await start(dir, env);
      const conversation = [
        { role: 'user', content: 'Draft a title' },
        { role: 'assistant', content: 'The Harbour' },
        { role: 'user', content: 'Now the opening line' },
      ];
      const id = await startGeneration(first, {
        system: 'You are a careful editor.',
        messages: conversation,
        temperature: 0.5,
        model: 'fake-model-large',
        maxTokens: 100,
      });
      const before = await firstText(first, id);
      await fixture.stop(first);

      fake.chunkDelayMs = 1;
      const second = await start(dir, env);
      expect(await finished(second, id)).toMatchObject({ status: 'completed', text: `${before}${FAKE_REPLY}` });
      const continued = fake.requests.at(-1)?.body as Record<string, unknown>;
      expect(continued).toMatchObject({
        model: 'fake-model-large',
        temperature: 0.5,
        messages: [
          { role: 'system', content: 'You are a careful editor.' },
          ...conversation,
          { role: 'assistant', content: before },
          { role: 'user', content: CONTINUE_INSTRUCTION },
        ],
      });
      // What is left of the request's token bound.
      expect(continued['max_tokens']).toBeLessThan(100);
    } finally {
      await fake.close();
    }
  });

  it('continues a generation journalled by the previous version (a prompt, not messages)', async () => {
    const dir = await fixture.dataDir('ai-restart-legacy-');
    const startedAt = Date.now() - 2_000;
    const id = newGenerationId(instanceTagOf('previous-version'), startedAt);
    await fixture.leaveBehind(dir, startedAt, [
      [
        GENERATION_JOURNAL_TOPIC,
        'journal.started',
        { jobId: id, userId: 'u1', request: { prompt: 'x', maxTokens: 20 } },
      ],
      ['user:u1', 'ai.generation.started', { generationId: id }],
      ['user:u1', 'ai.generation.snapshot', { generationId: id, seq: 0, text: ' It' }],
      [
        GENERATION_JOURNAL_TOPIC,
        'journal.checkpoint',
        { jobId: id, userId: 'u1', state: { seq: 0, text: ' It', tokens: 1 } },
      ],
    ]);
    const server = await start(dir, { AI_OFFLINE_TOKENS_PER_SECOND: '500' });
    const view = await finished(server, id);
    expect(view['status']).toBe('completed');
    expect(String(view['text']).startsWith(' It ')).toBe(true);
  });

  it('after a crash, the next process marks the generations left running as failed', async () => {
    const dir = await fixture.dataDir('ai-crash-');
    // What a process that died mid-generation leaves in the store: journal + started, no outcome.
    const startedAt = Date.now() - 5_000;
    const crashed = newGenerationId(instanceTagOf('crashed-process'), startedAt);
    const finishedId = newGenerationId(instanceTagOf('crashed-process'), startedAt);
    const request = { prompt: 'x', maxTokens: 10 };
    await fixture.leaveBehind(dir, startedAt, [
      [GENERATION_JOURNAL_TOPIC, 'journal.started', { jobId: crashed, userId: 'u1', request }],
      ['user:u1', 'ai.generation.started', { generationId: crashed }],
      [GENERATION_JOURNAL_TOPIC, 'journal.started', { jobId: finishedId, userId: 'u2', request }],
      ['user:u2', 'ai.generation.started', { generationId: finishedId }],
      ['user:u2', 'ai.generation.completed', { generationId: finishedId, text: ' done.' }],
    ]);

    const server = await start(dir);
    const stored = await server.app.realtime.internals.store.readAfter({
      topics: ['user:u1', 'user:u2'],
      after: 0,
      limit: 1000,
    });
    expect(outcomesIn(stored, crashed).map((event) => event.payload)).toEqual([
      { generationId: crashed, error: RESTART_ERROR, text: '' },
    ]);
    expect(outcomesIn(stored, finishedId).map((event) => event.type)).toEqual(['ai.generation.completed']);
    expect(await viewOf(server, crashed)).toEqual({
      generationId: crashed,
      status: 'failed',
      text: '',
      seq: -1,
      error: RESTART_ERROR,
    });
    expect(await viewOf(server, finishedId, 'u2')).toEqual({
      generationId: finishedId,
      status: 'completed',
      text: ' done.',
      // No delta of it in the log: the text is the outcome's.
      seq: -1,
    });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/ai_generations_total\{outcome="interrupted"\} 1/);
  });
});
