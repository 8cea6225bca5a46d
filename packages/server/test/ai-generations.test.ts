import type { EventSourceMessage } from 'eventsource-parser';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OfflineProvider } from '../src/adapters/ai/offline-provider.js';
import { ofType, openStream, published, type StreamReader } from './helpers/sse-reader.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

interface Delta {
  generationId: string;
  seq: number;
  text: string;
}

/** `route` is "<METHOD> <path>". */
async function api(
  server: TestApp,
  token: string | undefined,
  route: `${'GET' | 'POST'} /${string}`,
  body?: unknown,
): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const [method, path] = route.split(' ') as [string, string];
  const headers: Record<string, string> = {};
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Record<string, unknown>,
  };
}

async function startGeneration(server: TestApp, token: string, body: Record<string, unknown>): Promise<string> {
  const response = await api(server, token, 'POST /api/ai/generations', body);
  expect(response.status, JSON.stringify(response.body)).toBe(202);
  return response.body['generationId'] as string;
}

/** Payloads of the published events of `type`. */
const payloads = <T>(events: readonly EventSourceMessage[], type: string) =>
  ofType<{ payload: T }>(events, type).map((envelope) => envelope.payload);

const deltasOf = (events: readonly EventSourceMessage[], id: string) =>
  payloads<Delta>(events, 'ai.generation.delta').filter((delta) => delta.generationId === id);

const outcomeOf = (events: readonly EventSourceMessage[], id: string) =>
  published(events).find(
    (event) =>
      /^ai\.generation\.(completed|failed|cancelled)$/.test(event.event ?? '') &&
      (JSON.parse(event.data) as { payload: { generationId: string } }).payload.generationId === id,
  );

function payloadOf<T>(event: EventSourceMessage | undefined): T {
  return (JSON.parse(event?.data ?? '{}') as { payload: T }).payload;
}

async function untilOutcome(stream: StreamReader, id: string, timeoutMs = 20_000): Promise<EventSourceMessage> {
  await stream.waitFor((events) => outcomeOf(events, id) !== undefined, timeoutMs);
  return outcomeOf(stream.events, id) as EventSourceMessage;
}

/** What the offline provider writes for `prompt` with the test seed (1, the default). */
async function offlineText(prompt: string, maxTokens: number): Promise<string> {
  let text = '';
  const provider = new OfflineProvider({ tokensPerSecond: 1_000_000, seed: 1 });
  const messages = [{ role: 'user' as const, content: prompt }];
  for await (const chunk of provider.stream({ messages, maxTokens, signal: new AbortController().signal })) {
    if (chunk.type === 'delta') text += chunk.text;
  }
  return text;
}

async function waitForStatus(
  server: TestApp,
  token: string,
  id: string,
  status: string,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const response = await api(server, token, `GET /api/ai/generations/${id}`);
    if (response.body['status'] === status) return response.body;
    if (Date.now() > deadline) throw new Error(`still ${JSON.stringify(response.body)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('AI generations over HTTP + SSE (offline provider)', () => {
  let server: TestApp;
  let env: Record<string, string>;
  beforeEach(() => {
    env = { AI_OFFLINE_TOKENS_PER_SECOND: '400', AI_FLUSH_MS: '40' };
  });
  afterEach(async () => {
    await server?.close();
  });

  it('streams started, coalesced deltas and a completed whose text the deltas add up to', async () => {
    server = await startTestApp(env);
    const token = await server.token('u1');
    const stream = await openStream(server.url, { token });
    await stream.waitFor((events) => events.some((event) => event.event === 'connection.established'));
    const prompt = 'It is a truth universally';
    const id = await startGeneration(server, token, { prompt, maxTokens: 120, documentId: 'doc-1' });
    expect(id).toMatch(/^gen-/);

    const outcome = await untilOutcome(stream, id);
    expect(outcome.event).toBe('ai.generation.completed');
    const completed = payloadOf<{ text: string; usage?: { completionTokens?: number } }>(outcome);
    const deltas = deltasOf(stream.events, id);
    expect(deltas.map((delta) => delta.seq)).toEqual(deltas.map((_, index) => index));
    expect(deltas.map((delta) => delta.text).join('')).toBe(completed.text);
    expect(completed.text).toBe(await offlineText(prompt, 120));
    expect(completed.text.startsWith(' acknowledged,')).toBe(true);
    const tokens = completed.usage?.completionTokens ?? 0;
    expect(tokens).toBeGreaterThan(90);
    // ~0.25 s of tokens at 400/s in frames of 40 ms: far fewer events than tokens.
    expect(deltas.length).toBeLessThan(tokens / 3);

    expect(payloads(stream.events, 'ai.generation.started')).toEqual([{ generationId: id, documentId: 'doc-1' }]);
    // The order on the wire: started, the deltas, then the outcome.
    const types = published(stream.events).map((event) => event.event);
    expect(types[0]).toBe('ai.generation.started');
    expect(types.at(-1)).toBe('ai.generation.completed');

    const view = await api(server, token, `GET /api/ai/generations/${id}`);
    expect(view.body).toEqual({ generationId: id, status: 'completed', text: completed.text, seq: deltas.length - 1 });

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/ai_generations_total\{outcome="completed"\} 1/);
    expect(metrics).toMatch(/ai_generation_time_to_first_token_seconds_count 1/);
    expect(metrics).toMatch(new RegExp(`ai_generation_inter_delta_seconds_count ${deltas.length - 1}\\b`));
    stream.close();
  });

  it('reports a running generation with its text so far, then cancels it: no deltas after cancelled', async () => {
    server = await startTestApp({ ...env, AI_OFFLINE_TOKENS_PER_SECOND: '20' });
    const token = await server.token('u1');
    const stream = await openStream(server.url, { token });
    const id = await startGeneration(server, token, { prompt: 'The storm came in', maxTokens: 500 });
    await stream.waitFor((events) => deltasOf(events, id).length >= 2);

    const running = await api(server, token, `GET /api/ai/generations/${id}`);
    expect(running.body['status']).toBe('running');
    const seen = deltasOf(stream.events, id)
      .map((delta) => delta.text)
      .join('');
    expect((running.body['text'] as string).startsWith(seen)).toBe(true);

    const cancel = await api(server, token, `POST /api/ai/generations/${id}/cancel`);
    expect(cancel.status).toBe(202);
    const outcome = await untilOutcome(stream, id);
    expect(outcome.event).toBe('ai.generation.cancelled');
    expect(payloadOf(outcome)).toEqual({ generationId: id });
    const view = await api(server, token, `GET /api/ai/generations/${id}`);
    expect(view.body['status']).toBe('cancelled');
    // Nothing arrives after the outcome (wait well past a few flush intervals and tokens).
    await new Promise((resolve) => setTimeout(resolve, 300));
    const after = published(stream.events);
    expect(after.at(-1)?.event).toBe('ai.generation.cancelled');
    expect(
      deltasOf(stream.events, id)
        .map((delta) => delta.text)
        .join(''),
    ).toBe(view.body['text']);
    // Cancelling again is harmless.
    expect((await api(server, token, `POST /api/ai/generations/${id}/cancel`)).status).toBe(202);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/ai_generations_total\{outcome="cancelled"\} 1/);
    stream.close();
  });

  it('keeps generating after the stream closes; a later GET and resume have the full text', async () => {
    server = await startTestApp({ ...env, AI_OFFLINE_TOKENS_PER_SECOND: '100' });
    const token = await server.token('u1');
    const first = await openStream(server.url, { token });
    const prompt = 'The letter arrived on a grey';
    const id = await startGeneration(server, token, { prompt, maxTokens: 60 });
    await first.waitFor((events) => deltasOf(events, id).length >= 1);
    first.close();
    await first.ended;
    const before = published(first.events);
    const lastSeen = before.at(-1)?.id as string;

    const done = await waitForStatus(server, token, id, 'completed');
    const expected = await offlineText(prompt, 60);
    expect(done['text']).toBe(expected);

    const resumed = await openStream(server.url, { token, lastEventId: lastSeen });
    await resumed.waitFor((events) => events.some((event) => event.event === 'stream.resumed'));
    const all = [...before, ...published(resumed.events)];
    expect(
      deltasOf(all, id)
        .map((delta) => delta.text)
        .join(''),
    ).toBe(expected);
    expect(payloadOf<{ text: string }>(outcomeOf(all, id)).text).toBe(expected);
    resumed.close();
  });

  it('runs 100 concurrent generations for 20 users, each with its own exact text', async () => {
    server = await startTestApp({ AI_OFFLINE_TOKENS_PER_SECOND: '2000', AI_MAX_CONCURRENT_PER_USER: '10' });
    const users = Array.from({ length: 20 }, (_, index) => `load-${index}`);
    const tokens = await Promise.all(users.map((user) => server.token(user)));
    const streams = await Promise.all(tokens.map((token) => openStream(server.url, { token })));
    await Promise.all(
      streams.map((stream) => stream.waitFor((events) => events.some((e) => e.event === 'connection.established'))),
    );
    const jobs = users.flatMap((_, user) =>
      Array.from({ length: 5 }, (_, index) => ({ user, prompt: `Story ${user}.${index}: the harbour at dawn` })),
    );
    const ids = await Promise.all(
      jobs.map((job) => startGeneration(server, tokens[job.user] as string, { prompt: job.prompt, maxTokens: 50 })),
    );
    await Promise.all(
      jobs.map(async (job, index) => {
        const stream = streams[job.user] as StreamReader;
        const id = ids[index] as string;
        const outcome = await untilOutcome(stream, id, 60_000);
        expect(outcome.event).toBe('ai.generation.completed');
        const text = payloadOf<{ text: string }>(outcome).text;
        expect(
          deltasOf(stream.events, id)
            .map((delta) => delta.text)
            .join(''),
        ).toBe(text);
        expect(text).toBe(await offlineText(job.prompt, 50));
      }),
    );
    // Every user saw only their own generations.
    for (const [user, stream] of streams.entries()) {
      const own = new Set(ids.filter((_, index) => jobs[index]?.user === user));
      const seen = new Set(payloads<Delta>(stream.events, 'ai.generation.delta').map((delta) => delta.generationId));
      expect(seen).toEqual(own);
      stream.close();
    }
  }, 90_000);

  it('limits concurrent generations per user with 429 rate_limited', async () => {
    server = await startTestApp({ ...env, AI_OFFLINE_TOKENS_PER_SECOND: '5', AI_MAX_CONCURRENT_PER_USER: '2' });
    const token = await server.token('u1');
    const first = await startGeneration(server, token, { prompt: 'one' });
    await startGeneration(server, token, { prompt: 'two' });
    const refused = await api(server, token, 'POST /api/ai/generations', { prompt: 'three' });
    expect(refused.status).toBe(429);
    expect((refused.body['error'] as { code: string }).code).toBe('rate_limited');
    expect(refused.headers.get('retry-after')).toBe('1');
    // Another user is not affected; a cancelled generation frees a slot.
    await startGeneration(server, await server.token('u2'), { prompt: 'other user' });
    expect((await api(server, token, `POST /api/ai/generations/${first}/cancel`)).status).toBe(202);
    await startGeneration(server, token, { prompt: 'three again' });
  });

  it('shows a generation to its owner only, and validates input', async () => {
    server = await startTestApp(env);
    const owner = await server.token('owner');
    const other = await server.token('other');
    const id = await startGeneration(server, owner, { prompt: 'mine', maxTokens: 5 });
    expect((await api(server, other, `GET /api/ai/generations/${id}`)).status).toBe(404);
    expect((await api(server, other, `POST /api/ai/generations/${id}/cancel`)).status).toBe(404);
    await waitForStatus(server, owner, id, 'completed');
    // Also once it is only in the log (another user's topic is never read).
    expect((await api(server, other, `GET /api/ai/generations/${id}`)).status).toBe(404);
    const unknown = await api(server, owner, 'GET /api/ai/generations/gen-m0000000-abcdef-000000000000');
    expect(unknown.status).toBe(404);
    expect((unknown.body['error'] as { code: string }).code).toBe('not_found');
    expect((await api(server, owner, 'GET /api/ai/generations/not-an-id')).status).toBe(404);

    expect((await api(server, undefined, 'POST /api/ai/generations', { prompt: 'x' })).status).toBe(401);
    expect((await api(server, undefined, `GET /api/ai/generations/${id}`)).status).toBe(401);
    for (const body of [{}, { prompt: '   ' }, { prompt: 'x', maxTokens: 0 }, { prompt: 'x', extra: 1 }, [1]]) {
      const response = await api(server, owner, 'POST /api/ai/generations', body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect((response.body['error'] as { code: string }).code).toBe('invalid_request');
    }
    const badJson = await api(server, owner, 'POST /api/ai/generations', '{"prompt":');
    expect(badJson.status).toBe(400);
  });

  it('takes a conversation: the offline provider continues its last user message', async () => {
    server = await startTestApp(env);
    const token = await server.token('u1');
    const id = await startGeneration(server, token, {
      system: 'You write like Jane Austen.',
      messages: [
        { role: 'user', content: 'Begin a novel.' },
        { role: 'assistant', content: 'Chapter one.' },
        { role: 'user', content: 'It is a truth universally' },
      ],
      temperature: 0.7,
      model: 'offline-markov-2',
      maxTokens: 30,
    });
    const done = await waitForStatus(server, token, id, 'completed');
    expect(done['text']).toBe(await offlineText('It is a truth universally', 30));
  });

  it('names every problem of a bad generation request in one 400', async () => {
    server = await startTestApp(env);
    const token = await server.token('u1');
    const bad = await api(server, token, 'POST /api/ai/generations', {
      prompt: 'x',
      messages: [{ role: 'robot', content: ' ' }],
      temperature: 3,
      model: 'gpt-9',
      maxTokens: 0,
    });
    expect(bad.status).toBe(400);
    const { code, message } = bad.body['error'] as { code: string; message: string };
    expect(code).toBe('invalid_request');
    for (const problem of [
      'send either prompt or messages',
      'at messages[0].role',
      'content must not be blank',
      'at temperature',
      'at maxTokens',
      'model must be one of offline-markov-2',
      'at least one user message',
    ]) {
      expect(message).toContain(problem);
    }
    const tooLong = await api(server, token, 'POST /api/ai/generations', {
      system: 'x'.repeat(40_000),
      messages: [{ role: 'user', content: 'y'.repeat(30_000) }],
    });
    expect(tooLong.status).toBe(400);
    expect((tooLong.body['error'] as { message: string }).message).toContain('over 64000 characters');
    const tooMany = Array.from({ length: 201 }, () => ({ role: 'user', content: 'hi' }));
    const refused = await api(server, token, 'POST /api/ai/generations', { messages: tooMany });
    expect(refused.status).toBe(400);
    expect((refused.body['error'] as { message: string }).message).toContain('at messages');
    // The original form still works.
    await startGeneration(server, token, { prompt: 'still fine', maxTokens: 3 });
  });

  it('says it is the offline demo provider', async () => {
    server = await startTestApp(env);
    const response = await api(server, await server.token('u1'), 'GET /api/ai/provider');
    expect(response.status).toBe(200);
    expect(response.body['kind']).toBe('offline');
    expect(response.body['label']).toMatch(/offline demo provider/i);
    expect(response.body['models']).toEqual(['offline-markov-2']);
  });
});
