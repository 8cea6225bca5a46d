import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CONTINUE_INSTRUCTION } from './ai-provider.js';
import { FAKE_REPLY, FakeOpenAIServer, waitUntil, type RawResponse } from './testing/fake-openai-server.js';
import { OpenAICompatibleProvider, type OpenAICompatibleProviderOptions } from './openai-compatible-provider.js';
import { CONVERSATION, CONVERSATION_CHAT, collectCompletion } from './testing/collect-completion.js';

describe('OpenAICompatibleProvider against a fake OpenAI-compatible server', () => {
  let fake: FakeOpenAIServer;
  const make = (options: Partial<OpenAICompatibleProviderOptions> = {}) =>
    new OpenAICompatibleProvider({
      baseUrl: fake.baseUrl,
      apiKey: 'sk-test',
      model: 'fake-model',
      connectTimeoutMs: 2_000,
      idleTimeoutMs: 2_000,
      totalTimeoutMs: 10_000,
      ...options,
    });

  beforeEach(async () => {
    fake = await FakeOpenAIServer.start();
  });
  afterEach(async () => {
    await fake.close();
  });

  it('streams the completion, reassembling split frames and characters, with usage', async () => {
    const outcome = await collectCompletion(make());
    expect(outcome.error).toBeUndefined();
    expect(outcome.text).toBe(FAKE_REPLY);
    expect(outcome.deltas).toBe(fake.replyChunks.length);
    expect(outcome.usage).toEqual({ promptTokens: 7, completionTokens: fake.replyChunks.length });
    const [request] = fake.requests;
    expect(request?.path).toBe('/v1/chat/completions');
    expect(request?.headers.authorization).toBe('Bearer sk-test');
    expect(request?.body).toEqual({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'Tell me a story' }],
      stream: true,
      max_tokens: 50,
      stream_options: { include_usage: true },
    });
    expect(request?.aborted).toBe(false);
  });

  it('sends the system prompt, the conversation, the temperature and a per-request model', async () => {
    const outcome = await collectCompletion(make(), { request: { ...CONVERSATION, model: 'other-model' } });
    expect(outcome.text).toBe(FAKE_REPLY);
    expect(fake.requests[0]?.body).toMatchObject({
      model: 'other-model',
      messages: CONVERSATION_CHAT,
      temperature: CONVERSATION.temperature,
    });
  });

  it('continues after a restart: the text so far as its reply, then the instruction to go on', async () => {
    await collectCompletion(make(), { request: { continuation: 'Once upon' } });
    expect((fake.requests[0]?.body as { messages: unknown }).messages).toEqual([
      { role: 'user', content: 'Tell me a story' },
      { role: 'assistant', content: 'Once upon' },
      { role: 'user', content: CONTINUE_INSTRUCTION },
    ]);
  });

  it('sends max_completion_tokens when configured: current OpenAI models refuse max_tokens', async () => {
    const refused = await collectCompletion(make({ model: 'gpt-5-mini' }));
    expect(refused.error?.kind).toBe('http');
    expect(refused.error?.status).toBe(400);
    expect(refused.error?.message).toContain("Unsupported parameter: 'max_tokens'");

    const outcome = await collectCompletion(make({ model: 'gpt-5-mini', maxTokensParam: 'max_completion_tokens' }));
    expect(outcome.error).toBeUndefined();
    expect(outcome.text).toBe(FAKE_REPLY);
    const body = fake.requests[1]?.body as Record<string, unknown>;
    expect(body.max_completion_tokens).toBe(50);
    expect(body).not.toHaveProperty('max_tokens');
  });

  it('is refused with the service’s 401 when the key is wrong', async () => {
    fake.apiKey = 'sk-right';
    const outcome = await collectCompletion(make());
    expect(outcome.error?.status).toBe(401);
    expect(outcome.error?.message).toContain('Incorrect API key');
  });

  it('reuses its kept-alive connection for the next completion, and close() frees it', async () => {
    const provider = make();
    expect((await collectCompletion(provider)).text).toBe(FAKE_REPLY);
    // The rest of the response (after [DONE]) is read in the background before the socket is free.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await collectCompletion(provider)).text).toBe(FAKE_REPLY);
    const [first, second] = await fake.waitForRequests(2);
    expect(first?.remotePort).toBeDefined();
    expect(second?.remotePort).toBe(first?.remotePort);
    await provider.close();
    await first?.closed;
  });

  it('sends no Authorization header without a key (Ollama, llama.cpp, LM Studio)', async () => {
    await collectCompletion(make({ apiKey: undefined, baseUrl: `${fake.baseUrl}/` }));
    expect(fake.requests[0]?.headers.authorization).toBeUndefined();
    expect(fake.requests[0]?.path).toBe('/v1/chat/completions');
  });

  it('fails on {"error": ...} mid-stream after the text before it', async () => {
    fake.mode = 'error-mid-stream';
    const outcome = await collectCompletion(make());
    expect(outcome.text).toBe(fake.replyChunks.slice(0, 3).join(''));
    expect(outcome.error?.kind).toBe('provider');
    expect(outcome.error?.message).toContain('The model is overloaded');
  });

  it('fails on an HTTP error with its status and body', async () => {
    fake.mode = 'http-500';
    const outcome = await collectCompletion(make());
    expect(outcome.error?.kind).toBe('http');
    expect(outcome.error?.status).toBe(500);
    expect(outcome.error?.message).toContain('HTTP 500');
    expect(outcome.error?.message).toContain('internal failure in the fake model');
  });

  it('fails when the stream ends without [DONE]', async () => {
    fake.mode = 'cut';
    const outcome = await collectCompletion(make());
    expect(outcome.text).toBe(fake.replyChunks.slice(0, 3).join(''));
    expect(outcome.error?.kind).toBe('protocol');
    expect(outcome.error?.message).toMatch(/without \[DONE\]/);
  });

  it('times out waiting for the response headers, and aborts the request', async () => {
    fake.mode = 'hang';
    const outcome = await collectCompletion(make({ connectTimeoutMs: 200 }));
    expect(outcome.error?.kind).toBe('timeout');
    expect(outcome.error?.message).toMatch(/no response within 200 ms/);
    await waitUntil(() => fake.requests[0]?.aborted === true, 5_000, 'the abort');
  });

  it('times out when the stream stalls between chunks, and aborts the request', async () => {
    fake.mode = 'stall';
    const outcome = await collectCompletion(make({ idleTimeoutMs: 200 }));
    expect(outcome.text).toBe(fake.replyChunks.slice(0, 3).join(''));
    expect(outcome.error?.kind).toBe('timeout');
    expect(outcome.error?.message).toMatch(/nothing for 200 ms/);
    await waitUntil(() => fake.requests[0]?.aborted === true, 5_000, 'the abort');
  });

  it('tolerates slow chunks within the idle timeout, but not past the total', async () => {
    fake.chunkDelayMs = 60;
    fake.reply = 'one two three four five six seven eight nine ten';
    const slowButFine = await collectCompletion(make({ idleTimeoutMs: 500 }));
    expect(slowButFine.error).toBeUndefined();
    expect(slowButFine.text).toBe(fake.reply);
    const tooSlow = await collectCompletion(make({ idleTimeoutMs: 500, totalTimeoutMs: 300 }));
    expect(tooSlow.error?.kind).toBe('timeout');
    expect(tooSlow.error?.message).toMatch(/did not finish within 300 ms/);
    await waitUntil(() => fake.requests[1]?.aborted === true, 5_000, 'the abort');
  });

  it('stops when the caller aborts, and the server sees the abort', async () => {
    fake.chunkDelayMs = 100;
    const controller = new AbortController();
    const outcome = await collectCompletion(make(), { signal: controller.signal, onDelta: () => controller.abort() });
    expect(outcome.deltas).toBe(1);
    expect(outcome.error?.kind).toBe('aborted');
    await waitUntil(() => fake.requests[0]?.aborted === true, 5_000, 'the abort');
  });

  it('frees the connection when the consumer stops reading early', async () => {
    fake.chunkDelayMs = 50;
    const messages = [{ role: 'user' as const, content: 'x' }];
    for await (const chunk of make().stream({ messages, maxTokens: 5, signal: new AbortController().signal })) {
      if (chunk.type === 'delta') break;
    }
    await waitUntil(() => fake.requests[0]?.aborted === true, 5_000, 'the abort');
  });

  it('reports an unreachable server as an http error', async () => {
    const baseUrl = fake.baseUrl;
    await fake.close();
    const outcome = await collectCompletion(make({ baseUrl }));
    expect(outcome.error?.kind).toBe('http');
    expect(outcome.error?.message).toMatch(/could not reach the provider/);
    fake = await FakeOpenAIServer.start();
  });
});

describe('OpenAICompatibleProvider against a fake Azure OpenAI', () => {
  let fake: FakeOpenAIServer;
  beforeAll(async () => {
    fake = await FakeOpenAIServer.start({ azure: true, apiKey: 'azure-key' });
  });
  afterAll(async () => {
    await fake.close();
  });
  const azure = (apiVersion: string, apiKey = 'azure-key') =>
    new OpenAICompatibleProvider({
      baseUrl: `${fake.origin}/`,
      apiKey,
      model: 'my-gpt-5',
      maxTokensParam: 'max_completion_tokens',
      azure: { apiVersion },
      connectTimeoutMs: 2_000,
      idleTimeoutMs: 2_000,
      totalTimeoutMs: 10_000,
    });

  it('asks the deployment, with the key in api-key and the usage', async () => {
    const provider = azure('2025-04-01-preview');
    expect(provider.info.kind).toBe('azure-openai');
    const outcome = await collectCompletion(provider);
    expect(outcome.error).toBeUndefined();
    expect(outcome.text).toBe(FAKE_REPLY);
    expect(outcome.usage).toEqual({ promptTokens: 7, completionTokens: fake.replyChunks.length });
    const request = fake.requests.at(-1);
    expect(request?.path).toBe('/openai/deployments/my-gpt-5/chat/completions?api-version=2025-04-01-preview');
    expect(request?.headers['api-key']).toBe('azure-key');
    expect(request?.headers.authorization).toBeUndefined();
    expect(request?.body).toMatchObject({ max_completion_tokens: 50, stream_options: { include_usage: true } });
    // A per-request model is another deployment.
    await collectCompletion(provider, { request: { model: 'o4-mini' } });
    expect(fake.requests.at(-1)?.path).toBe(
      '/openai/deployments/o4-mini/chat/completions?api-version=2025-04-01-preview',
    );
  });

  it('speaks the v1 API with apiVersion v1 (the deployment as the model)', async () => {
    const outcome = await collectCompletion(azure('v1'));
    expect(outcome.error).toBeUndefined();
    expect(fake.requests.at(-1)?.path).toBe('/openai/v1/chat/completions');
    expect(fake.requests.at(-1)?.body).toMatchObject({ model: 'my-gpt-5' });
  });

  it('fails with Azure’s 401 for a wrong key', async () => {
    const outcome = await collectCompletion(azure('2025-04-01-preview', 'wrong'));
    expect(outcome.error?.status).toBe(401);
    expect(outcome.error?.message).toContain('Access denied');
  });
});

describe('OpenAICompatibleProvider parsing what a server sends', () => {
  let fake: FakeOpenAIServer;
  beforeAll(async () => {
    fake = await FakeOpenAIServer.start({ mode: 'raw' });
  });
  afterAll(async () => {
    await fake.close();
  });
  const withBody = (body: string, response: Omit<RawResponse, 'body'> = {}) => {
    fake.raw = { ...response, body };
    return new OpenAICompatibleProvider({
      baseUrl: fake.baseUrl,
      model: 'm',
      connectTimeoutMs: 1_000,
      idleTimeoutMs: 1_000,
      totalTimeoutMs: 1_000,
    });
  };
  const chunk = (content: string) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content } }] })}\n\n`;

  it('accepts a final [DONE] without its blank line, and CRLF line ends', async () => {
    const outcome = await collectCompletion(withBody(`${chunk('Hi').replace(/\n/g, '\r\n')}data: [DONE]`));
    expect(outcome.error).toBeUndefined();
    expect(outcome.text).toBe('Hi');
  });

  it('ignores comments, role-only chunks and other events', async () => {
    const body = `: keep-alive\n\n${chunk('')}data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n${chunk('A')}data: [DONE]\n\n`;
    const outcome = await collectCompletion(withBody(body));
    expect(outcome.text).toBe('A');
    expect(outcome.deltas).toBe(1);
  });

  it('fails on malformed JSON and on a line cut mid-JSON', async () => {
    expect((await collectCompletion(withBody('data: {not json\n\n'))).error?.kind).toBe('protocol');
    const cut = await collectCompletion(withBody(`${chunk('A')}data: {"choices":[{"delta":{"cont`));
    expect(cut.error?.kind).toBe('protocol');
    expect(cut.text).toBe('A');
  });

  it('fails on an empty body, naming the content type', async () => {
    const outcome = await collectCompletion(withBody('', { contentType: 'application/json' }));
    expect(outcome.error?.kind).toBe('protocol');
    expect(outcome.error?.message).toContain('application/json');
  });

  it('reads a string error (Ollama) and an SSE error event', async () => {
    const ollama = await collectCompletion(withBody('data: {"error":"model not found"}\n\n'));
    expect(ollama.error?.message).toContain('model not found');
    const event = await collectCompletion(withBody('event: error\ndata: {"message":"boom"}\n\n'));
    expect(event.error?.kind).toBe('provider');
  });

  it('truncates long error bodies', async () => {
    const outcome = await collectCompletion(withBody('x'.repeat(5_000), { status: 502 }));
    expect(outcome.error?.status).toBe(502);
    expect(outcome.error?.message.length).toBeLessThan(600);
  });
});
