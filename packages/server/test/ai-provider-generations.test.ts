import type { EventSourceMessage } from 'eventsource-parser';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_REPLY, FakeOpenAIServer, waitUntil } from '../src/adapters/ai/testing/fake-openai-server.js';
import { FakeAnthropicServer } from '../src/adapters/ai/testing/fake-anthropic-server.js';
import { CONVERSATION, CONVERSATION_CHAT } from '../src/adapters/ai/testing/collect-completion.js';
import type { FakeModelServer, FakeRequest } from '../src/adapters/ai/testing/fake-model-server.js';
import { callAs } from './helpers/api-call.js';
import { ofType, openStream, published, type StreamReader } from './helpers/sse-reader.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

interface Outcome {
  type: string;
  payload: { generationId: string; text?: string; error?: string; usage?: unknown };
}

const payloads = <T>(events: readonly EventSourceMessage[], type: string) =>
  ofType<{ payload: T }>(events, type).map((envelope) => envelope.payload);

/** Seq of the last delta of generation `id` on the stream (-1 before the first). */
const lastSeq = (events: readonly EventSourceMessage[], id: string) =>
  Math.max(
    -1,
    ...payloads<{ generationId: string; seq: number }>(events, 'ai.generation.delta')
      .filter((delta) => delta.generationId === id)
      .map((delta) => delta.seq),
  );

const deltaText = (events: readonly EventSourceMessage[], id: string) =>
  payloads<{ generationId: string; seq: number; text: string }>(events, 'ai.generation.delta')
    .filter((delta) => delta.generationId === id)
    .map((delta) => delta.text)
    .join('');

/** Every test streams as this user. */
const WRITER = 'writer';

/** Starts a generation as {@link WRITER}; resolves with its id. */
async function startGeneration(server: TestApp, body: Record<string, unknown>): Promise<string> {
  const response = await callAs(server.url, WRITER, 'POST /api/ai/generations', body);
  expect(response.status, JSON.stringify(response.body)).toBe(202);
  return response.body['generationId'] as string;
}

/**
 * Starts a slow generation and cancels it after its first delta; resolves once `cancelled` is on
 * the stream and the service saw its request's connection close.
 */
async function cancelMidStream(server: TestApp, stream: StreamReader, fake: FakeModelServer) {
  fake.chunkDelayMs = 150;
  const before = fake.requests.length;
  const id = await startGeneration(server, { prompt: 'slow please' });
  await stream.waitFor((events) => deltaText(events, id).length > 0);
  expect((await callAs(server.url, WRITER, `POST /api/ai/generations/${id}/cancel`)).status).toBe(202);
  await stream.waitFor((events) => outcomeOf(events, id) !== undefined);
  expect(outcomeOf(stream.events, id)?.type).toBe('ai.generation.cancelled');
  const request = fake.requests[before] as FakeRequest;
  await waitUntil(() => request.aborted, 5_000, 'the service to see the connection close');
  return { id, request };
}

function outcomeOf(events: readonly EventSourceMessage[], id: string): Outcome | undefined {
  return published(events)
    .map((event) => JSON.parse(event.data) as Outcome)
    .find(
      (envelope) =>
        /^ai\.generation\.(completed|failed|cancelled)$/.test(envelope.type) && envelope.payload.generationId === id,
    );
}

/**
 * The real path end to end: HTTP API → generation service → OpenAI-compatible client → a local
 * fake OpenAI server streaming the real wire format → coalesced events on the user's SSE stream.
 */
describe('AI generations with an OpenAI-compatible provider (fake server)', () => {
  let fake: FakeOpenAIServer;
  let server: TestApp;
  let token: string;
  let stream: StreamReader;

  beforeAll(async () => {
    fake = await FakeOpenAIServer.start();
    server = await startTestApp({
      AI_BASE_URL: fake.baseUrl,
      AI_API_KEY: 'sk-fake',
      AI_MODEL: 'fake-model',
      AI_MODELS: 'gpt-5-mini, fake-model-large',
      AI_IDLE_TIMEOUT_MS: '400',
      AI_CONNECT_TIMEOUT_MS: '400',
      AI_FLUSH_MS: '40',
    });
    token = await server.token(WRITER);
    stream = await openStream(server.url, { token });
    await stream.waitFor((events) => events.some((event) => event.event === 'connection.established'));
  });
  afterAll(async () => {
    stream?.close();
    await server?.close();
    await fake?.close();
  });
  afterEach(() => {
    fake.mode = 'normal';
    fake.chunkDelayMs = 1;
  });

  async function generate(
    request: string | Record<string, unknown> = 'Tell me a story',
  ): Promise<{ id: string; outcome: Outcome }> {
    const id = await startGeneration(
      server,
      typeof request === 'string' ? { prompt: request, maxTokens: 64 } : request,
    );
    await stream.waitFor((events) => outcomeOf(events, id) !== undefined, 15_000);
    return { id, outcome: outcomeOf(stream.events, id) as Outcome };
  }

  async function view(id: string): Promise<Record<string, unknown>> {
    const response = await fetch(`${server.url}/api/ai/generations/${id}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    return (await response.json()) as Record<string, unknown>;
  }

  it('completes with the provider text, split into deltas that add up to it, with usage', async () => {
    const before = fake.requests.length;
    const { id, outcome } = await generate('Write the opening line');
    expect(outcome.type).toBe('ai.generation.completed');
    expect(outcome.payload.text).toBe(FAKE_REPLY);
    expect(deltaText(stream.events, id)).toBe(FAKE_REPLY);
    expect(outcome.payload.usage).toEqual({ promptTokens: 7, completionTokens: fake.replyChunks.length });
    const request = fake.requests[before];
    expect(request?.headers.authorization).toBe('Bearer sk-fake');
    expect(request?.body).toMatchObject({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'Write the opening line' }],
      stream: true,
      max_tokens: 64,
    });
    expect(await view(id)).toEqual({
      generationId: id,
      status: 'completed',
      text: FAKE_REPLY,
      seq: lastSeq(stream.events, id),
    });
    const provider = await fetch(`${server.url}/api/ai/provider`, { headers: { authorization: `Bearer ${token}` } });
    expect(await provider.json()).toEqual({
      kind: 'openai-compatible',
      label: 'OpenAI-compatible (fake-model)',
      model: 'fake-model',
      models: ['fake-model', 'gpt-5-mini', 'fake-model-large'],
    });
  });

  it('sends a conversation with its system prompt, temperature and an allowed model', async () => {
    const before = fake.requests.length;
    const { outcome } = await generate({ ...CONVERSATION, model: 'fake-model-large', maxTokens: 32 });
    expect(outcome.type).toBe('ai.generation.completed');
    expect(fake.requests[before]?.body).toEqual({
      model: 'fake-model-large',
      messages: CONVERSATION_CHAT,
      stream: true,
      max_tokens: 32,
      temperature: CONVERSATION.temperature,
      stream_options: { include_usage: true },
    });
  });

  it('refuses a model off the allow-list without asking the provider', async () => {
    const before = fake.requests.length;
    const response = await callAs(server.url, WRITER, 'POST /api/ai/generations', { prompt: 'x', model: 'gpt-4-32k' });
    expect(response.status).toBe(400);
    const error = response.body['error'] as { code: string; message: string };
    expect(error.code).toBe('invalid_request');
    expect(error.message).toContain('model must be one of fake-model, gpt-5-mini, fake-model-large');
    expect(fake.requests.length).toBe(before);
  });

  it('a model that wants max_completion_tokens fails with the provider’s message when sent max_tokens', async () => {
    // This server is configured for a local endpoint (max_tokens); OpenAI's newer models refuse it.
    const { outcome } = await generate({ prompt: 'x', model: 'gpt-5-mini' });
    expect(outcome.type).toBe('ai.generation.failed');
    expect(outcome.payload.error).toContain("Unsupported parameter: 'max_tokens'");
  });

  it('cancel mid-stream aborts the provider request, publishes cancelled, and stops the deltas', async () => {
    const { id, request } = await cancelMidStream(server, stream, fake);
    // The fake would have sent a chunk every 150 ms: none of them reaches the stream any more.
    const textAtCancel = deltaText(stream.events, id);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(deltaText(stream.events, id)).toBe(textAtCancel);
    expect(request.chunksSent).toBeLessThan(fake.replyChunks.length);
    expect(await view(id)).toEqual({
      generationId: id,
      status: 'cancelled',
      text: textAtCancel,
      seq: lastSeq(stream.events, id),
    });
  });

  it('an {"error": ...} mid-stream fails the generation with the provider message', async () => {
    fake.mode = 'error-mid-stream';
    const { id, outcome } = await generate();
    expect(outcome.type).toBe('ai.generation.failed');
    expect(outcome.payload.error).toContain('The model is overloaded');
    expect(deltaText(stream.events, id)).toBe(fake.replyChunks.slice(0, 3).join(''));
    expect(await view(id)).toMatchObject({ status: 'failed', text: fake.replyChunks.slice(0, 3).join('') });
  });

  it('an HTTP 500 fails the generation with the status and the body', async () => {
    fake.mode = 'http-500';
    const { id, outcome } = await generate();
    expect(outcome.type).toBe('ai.generation.failed');
    expect(outcome.payload.error).toContain('HTTP 500');
    expect(outcome.payload.error).toContain('internal failure in the fake model');
    expect(deltaText(stream.events, id)).toBe('');
  });

  it('a stream cut without [DONE] is a failure, not a short answer', async () => {
    fake.mode = 'cut';
    const { outcome } = await generate();
    expect(outcome.type).toBe('ai.generation.failed');
    expect(outcome.payload.error).toMatch(/without \[DONE\]/);
  });

  it('a stalled stream and a provider that never answers fail on their timeouts, aborting the request', async () => {
    fake.mode = 'stall';
    const stalled = await generate();
    expect(stalled.outcome.payload.error).toMatch(/sent nothing for 400 ms/);
    await waitUntil(() => fake.requests.at(-1)?.aborted === true, 5_000, 'the abort');
    fake.mode = 'hang';
    const hung = await generate();
    expect(hung.outcome.payload.error).toMatch(/no response within 400 ms/);
    await waitUntil(() => fake.requests.at(-1)?.aborted === true, 5_000, 'the abort');
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/ai_generations_total\{outcome="failed"\} [1-9]/);
  });
});

/**
 * The same path with the other ways to a model: Azure OpenAI through the direct client (its
 * default max_completion_tokens, the api-key header, the deployment URL) and Anthropic through the
 * AI SDK adapter, each against a fake speaking the service's wire format.
 */
describe.each([
  {
    name: 'Azure OpenAI (direct client)',
    start: () => FakeOpenAIServer.start({ azure: true, apiKey: 'azure-key' }),
    env: (fake: FakeModelServer) => ({
      AI_PROVIDER: 'azure-openai',
      AI_BASE_URL: fake.origin,
      AI_API_KEY: 'azure-key',
      AI_MODEL: 'gpt-5-mini',
    }),
    kind: 'azure-openai',
  },
  {
    name: 'Anthropic (AI SDK)',
    start: () => FakeAnthropicServer.start({ apiKey: 'sk-ant' }),
    env: (fake: FakeModelServer) => ({
      AI_PROVIDER: 'anthropic',
      AI_BASE_URL: fake.baseUrl,
      AI_API_KEY: 'sk-ant',
      AI_MODEL: 'claude-sonnet-4-5',
    }),
    kind: 'anthropic',
  },
])('AI generations through $name', ({ start, env, kind }) => {
  let fake: FakeModelServer;
  let server: TestApp;
  let token: string;
  let stream: StreamReader;

  beforeAll(async () => {
    fake = await start();
    server = await startTestApp({ ...env(fake), AI_FLUSH_MS: '40' });
    token = await server.token(WRITER);
    stream = await openStream(server.url, { token });
    await stream.waitFor((events) => events.some((event) => event.event === 'connection.established'));
  });
  afterAll(async () => {
    stream?.close();
    await server?.close();
    await fake?.close();
  });

  it('completes a conversation with the usage the service reported', async () => {
    fake.chunkDelayMs = 1;
    const id = await startGeneration(server, {
      system: 'Be brief.',
      messages: [{ role: 'user', content: 'A story' }],
      maxTokens: 64,
    });
    await stream.waitFor((events) => outcomeOf(events, id) !== undefined, 15_000);
    const outcome = outcomeOf(stream.events, id) as Outcome;
    expect(outcome.type).toBe('ai.generation.completed');
    expect(outcome.payload.text).toBe(FAKE_REPLY);
    expect(deltaText(stream.events, id)).toBe(FAKE_REPLY);
    expect(outcome.payload.usage).toEqual({ promptTokens: 7, completionTokens: fake.replyChunks.length });
    const provider = await fetch(`${server.url}/api/ai/provider`, { headers: { authorization: `Bearer ${token}` } });
    expect(await provider.json()).toMatchObject({ kind });
  });

  it('a cancel aborts the request to the service', async () => {
    const { request } = await cancelMidStream(server, stream, fake);
    expect(request.chunksSent).toBeLessThan(fake.replyChunks.length);
  });
});
