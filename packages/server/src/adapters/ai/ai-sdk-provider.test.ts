import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../../../apps/backend/src/config.js';
import { CONTINUE_INSTRUCTION } from './ai-provider.js';
import type { LanguageModel } from 'ai';
import { AISdkProvider } from './ai-sdk-provider.js';
import { createAIProvider } from './create-ai-provider.js';
import { FakeOpenAIServer } from './testing/fake-openai-server.js';
import { CONVERSATION, CONVERSATION_CHAT, collectCompletion } from './testing/collect-completion.js';
import { FakeAnthropicServer } from './testing/fake-anthropic-server.js';
import { FakeGeminiServer } from './testing/fake-gemini-server.js';
import { FAKE_REPLY, waitUntil, type FakeModelServer, type FakeRequest } from './testing/fake-model-server.js';
import { FakeOpenAIResponsesServer } from './testing/fake-openai-responses-server.js';

/** What each service is sent for {@link CONVERSATION}, in its own wire format. */
interface Service {
  name: 'openai' | 'anthropic' | 'google' | 'openai-compatible';
  start(apiKey: string): Promise<FakeModelServer>;
  model: string;
  path(model: string): string;
  key(request: FakeRequest): string | undefined;
  /** The request body's part that carries the conversation, the temperature and the token bound. */
  conversation: Record<string, unknown>;
  /** The last turns of a continuation (the text so far, then the instruction), as sent. */
  continuation(text: string): unknown[];
  messagesOf(body: unknown): unknown[];
  /** Service message of the fake's mid-stream error. */
  midStreamError: string;
}

const bodyOf = (body: unknown) => body as Record<string, unknown>;

const SERVICES: Service[] = [
  {
    name: 'openai',
    start: (apiKey) => FakeOpenAIResponsesServer.start({ apiKey }),
    model: 'gpt-5-mini',
    path: () => '/v1/responses',
    key: (request) => request.headers.authorization,
    conversation: {
      model: 'gpt-5-mini',
      input: [
        { role: 'developer', content: 'You are terse.' },
        { role: 'user', content: [{ type: 'input_text', text: 'Hi' }] },
        { role: 'assistant', content: [{ type: 'output_text', text: 'Hello.' }] },
        { role: 'user', content: [{ type: 'input_text', text: 'Tell me a story' }] },
      ],
      max_output_tokens: 50,
      stream: true,
      store: false,
    },
    continuation: (text) => [
      { role: 'assistant', content: [{ type: 'output_text', text }] },
      { role: 'user', content: [{ type: 'input_text', text: CONTINUE_INSTRUCTION }] },
    ],
    messagesOf: (body) => bodyOf(body).input as unknown[],
    midStreamError: 'The model is overloaded',
  },
  {
    name: 'anthropic',
    start: (apiKey) => FakeAnthropicServer.start({ apiKey }),
    model: 'claude-sonnet-4-5',
    path: () => '/v1/messages',
    key: (request) => request.headers['x-api-key'] as string | undefined,
    conversation: {
      model: 'claude-sonnet-4-5',
      system: [{ type: 'text', text: 'You are terse.' }],
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Hi' }] },
        { role: 'assistant', content: [{ type: 'text', text: 'Hello.' }] },
        { role: 'user', content: [{ type: 'text', text: 'Tell me a story' }] },
      ],
      max_tokens: 50,
      temperature: 0.4,
      stream: true,
    },
    continuation: (text) => [
      { role: 'assistant', content: [{ type: 'text', text }] },
      { role: 'user', content: [{ type: 'text', text: CONTINUE_INSTRUCTION }] },
    ],
    messagesOf: (body) => bodyOf(body).messages as unknown[],
    midStreamError: 'Overloaded',
  },
  {
    name: 'google',
    start: (apiKey) => FakeGeminiServer.start({ apiKey }),
    model: 'gemini-2.5-flash',
    path: (model) => `/v1beta/models/${model}:streamGenerateContent?alt=sse`,
    key: (request) => request.headers['x-goog-api-key'] as string | undefined,
    conversation: {
      systemInstruction: { parts: [{ text: 'You are terse.' }] },
      contents: [
        { role: 'user', parts: [{ text: 'Hi' }] },
        { role: 'model', parts: [{ text: 'Hello.' }] },
        { role: 'user', parts: [{ text: 'Tell me a story' }] },
      ],
      generationConfig: { maxOutputTokens: 50, temperature: 0.4 },
    },
    continuation: (text) => [
      { role: 'model', parts: [{ text }] },
      { role: 'user', parts: [{ text: CONTINUE_INSTRUCTION }] },
    ],
    messagesOf: (body) => bodyOf(body).contents as unknown[],
    midStreamError: 'The model is overloaded',
  },
  {
    name: 'openai-compatible',
    start: (apiKey) => FakeOpenAIServer.start({ apiKey }),
    model: 'llama3.1',
    path: () => '/v1/chat/completions',
    key: (request) => request.headers.authorization,
    conversation: {
      model: 'llama3.1',
      messages: CONVERSATION_CHAT,
      max_tokens: 50,
      temperature: 0.4,
      stream: true,
      stream_options: { include_usage: true },
    },
    continuation: (text) => [
      { role: 'assistant', content: text },
      { role: 'user', content: CONTINUE_INSTRUCTION },
    ],
    messagesOf: (body) => bodyOf(body).messages as unknown[],
    midStreamError: 'The model is overloaded',
  },
];

describe.each(SERVICES)('AI SDK adapter, AI_PROVIDER=$name, against a fake speaking its wire format', (service) => {
  let fake: FakeModelServer;
  const make = (env: Record<string, string> = {}) =>
    createAIProvider(
      parseConfig({
        AI_PROVIDER: service.name,
        AI_CLIENT: 'ai-sdk',
        AI_BASE_URL: fake.baseUrl,
        AI_API_KEY: 'key-1',
        AI_MODEL: service.model,
        AI_CONNECT_TIMEOUT_MS: '1000',
        AI_IDLE_TIMEOUT_MS: '1000',
        ...env,
      }),
    );

  beforeAll(async () => {
    fake = await service.start('key-1');
  });
  afterAll(async () => {
    await fake.close();
  });
  afterEach(() => {
    fake.mode = 'normal';
    fake.chunkDelayMs = 1;
    fake.requests.length = 0;
  });

  it('streams the reply and its usage; sends the conversation as the service wants it', async () => {
    const provider = make();
    expect(provider.info).toMatchObject({ kind: service.name, model: service.model });
    expect(provider.info.label).toContain('AI SDK');
    const outcome = await collectCompletion(provider, { request: CONVERSATION });
    expect(outcome.error).toBeUndefined();
    expect(outcome.text).toBe(FAKE_REPLY);
    expect(outcome.usage).toEqual({ promptTokens: 7, completionTokens: fake.replyChunks.length });
    const [request] = fake.requests;
    expect(request?.path).toBe(service.path(service.model));
    expect(service.key(request as FakeRequest)).toMatch(/key-1$/);
    expect(request?.body).toMatchObject(service.conversation);
  });

  it('asks for another model when the request names one', async () => {
    await collectCompletion(make(), { request: { model: 'other-model' } });
    expect(fake.requests[0]?.path).toBe(service.path('other-model'));
  });

  it('continues after a restart: the text so far as its reply, then the instruction to go on', async () => {
    await collectCompletion(make(), { request: { continuation: 'Once upon' } });
    expect(service.messagesOf(fake.requests[0]?.body).slice(-2)).toEqual(service.continuation('Once upon'));
  });

  it('fails with the service’s error event mid-stream, after the text before it', async () => {
    fake.mode = 'error-mid-stream';
    const outcome = await collectCompletion(make());
    expect(outcome.text).toBe(fake.replyChunks.slice(0, 3).join(''));
    expect(outcome.error?.kind).toBe('provider');
    expect(outcome.error?.message).toContain(service.midStreamError);
  });

  it('fails on an HTTP error with its status and the service’s message', async () => {
    fake.mode = 'http-500';
    const outcome = await collectCompletion(make());
    expect(outcome.error?.kind).toBe('http');
    expect(outcome.error?.status).toBe(500);
    expect(outcome.error?.message).toMatch(/HTTP 500: \S/);
  });

  it('is refused with the service’s 4xx for a wrong key', async () => {
    const outcome = await collectCompletion(make({ AI_API_KEY: 'wrong' }));
    expect(outcome.error?.kind).toBe('http');
    expect([400, 401, 403]).toContain(outcome.error?.status);
  });

  it('fails when the stream is cut before the service says the reply is finished', async () => {
    fake.mode = 'cut';
    const outcome = await collectCompletion(make());
    expect(outcome.text).toBe(fake.replyChunks.slice(0, 3).join(''));
    expect(outcome.error?.kind).toBe('protocol');
  });

  it('a cancel aborts the upstream request: the server sees the connection closed', async () => {
    fake.chunkDelayMs = 100;
    const controller = new AbortController();
    const outcome = await collectCompletion(make(), { signal: controller.signal, onDelta: () => controller.abort() });
    expect(outcome.error?.kind).toBe('aborted');
    expect(outcome.text).toBe(fake.replyChunks[0]);
    await waitUntil(() => fake.requests[0]?.aborted === true, 5_000, 'the connection to close');
  });

  it('times out a stalled stream, closing the connection', async () => {
    fake.mode = 'stall';
    const outcome = await collectCompletion(make({ AI_IDLE_TIMEOUT_MS: '300' }));
    expect(outcome.error?.kind).toBe('timeout');
    expect(outcome.error?.message).toContain('sent nothing for 300 ms');
    await waitUntil(() => fake.requests[0]?.aborted === true, 5_000, 'the connection to close');
  });

  it('times out a server that never answers', async () => {
    fake.mode = 'hang';
    const outcome = await collectCompletion(make({ AI_CONNECT_TIMEOUT_MS: '300' }));
    expect(outcome.error?.kind).toBe('timeout');
    expect(outcome.error?.message).toContain('no response within 300 ms');
    await waitUntil(() => fake.requests[0]?.aborted === true, 5_000, 'the connection to close');
  });
});

describe('AISdkProvider with a model of an older AI SDK specification (v2, through streamText)', () => {
  /** A host's v2 model: streams `words`, then finishes with the usage it was told. */
  function v2Model(words: string[], calls: unknown[]) {
    return {
      specificationVersion: 'v2' as const,
      provider: 'host',
      modelId: 'host-model',
      supportedUrls: {},
      doGenerate: () => Promise.reject(new Error('streaming only')),
      doStream: (options: unknown) => {
        calls.push(options);
        const parts = [
          { type: 'stream-start', warnings: [] },
          { type: 'text-start', id: 't' },
          ...words.map((delta) => ({ type: 'text-delta', id: 't', delta })),
          { type: 'text-end', id: 't' },
          {
            type: 'finish',
            finishReason: 'stop',
            usage: { inputTokens: 7, outputTokens: words.length, totalTokens: 7 + words.length },
          },
        ];
        return Promise.resolve({
          stream: new ReadableStream({
            start: (c) => {
              for (const p of parts) c.enqueue(p);
              c.close();
            },
          }),
        });
      },
    };
  }

  it('streams its text and usage, the chat sent as its prompt', async () => {
    const calls: unknown[] = [];
    const words = ['Once', ' upon', ' a time'];
    const provider = new AISdkProvider({
      info: { kind: 'custom', label: 'A host model', model: 'host-model' },
      languageModel: () => v2Model(words, calls) as unknown as LanguageModel,
      connectTimeoutMs: 5_000,
      idleTimeoutMs: 5_000,
      totalTimeoutMs: 10_000,
    });
    const outcome = await collectCompletion(provider, { request: CONVERSATION });
    expect(outcome.error).toBeUndefined();
    expect(outcome.text).toBe(words.join(''));
    expect(outcome.usage).toEqual({ promptTokens: 7, completionTokens: 3 });
    const prompt = (calls[0] as { prompt: { role: string }[] }).prompt;
    expect(prompt.map((message) => message.role)).toEqual(['system', 'user', 'assistant', 'user']);
  });
});
