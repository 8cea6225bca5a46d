import { GenerationStore, type FetchLike } from '@infinitescribe/client';
import type { EnvelopeWithId, GenerationEventType } from '@infinitescribe/client';
import type { ConversationView } from '@infinitescribe/protocol';
import { readUIMessageStream, type UIMessage, type UIMessageChunk } from 'ai';
import { describe, expect, it } from 'vitest';
import { answerMetadataOf, conversationMessages, withOpenedText } from './conversations-api.js';
import { GenerationChatTransport, toGenerationMessages } from './generation-chat-transport.js';

/** A server as far as the transport asks it: records requests, answers from `routes`. */
function fakeServer(routes: Record<string, (body: unknown) => { status: number; body?: unknown }>) {
  const requests: { method: string; path: string; body: unknown }[] = [];
  const fetch: FetchLike = async (input, init) => {
    const path = input.replace('http://server', '');
    const method = init?.method ?? 'GET';
    const body: unknown = typeof init?.body === 'string' ? JSON.parse(init.body) : undefined;
    requests.push({ method, path, body });
    const route = routes[`${method} ${path}`];
    const answer = route ? route(body) : { status: 404, body: { error: { code: 'not_found', message: 'no' } } };
    return new Response(answer.body === undefined ? null : JSON.stringify(answer.body), { status: answer.status });
  };
  return { fetch, requests };
}

let nextId = 1;
function event<TType extends GenerationEventType>(
  type: TType,
  payload: EnvelopeWithId<TType>['payload'],
): EnvelopeWithId<TType> {
  return {
    id: String(nextId++),
    topic: 'user:u1',
    type,
    ts: new Date().toISOString(),
    payload,
  } as EnvelopeWithId<TType>;
}

/** Reads chunks until the stream ends or `count` chunks arrived. */
async function read(stream: ReadableStream<UIMessageChunk>, count = Infinity): Promise<UIMessageChunk[]> {
  const reader = stream.getReader();
  const chunks: UIMessageChunk[] = [];
  while (chunks.length < count) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
  }
  reader.releaseLock();
  return chunks;
}

const textOf = (chunks: UIMessageChunk[]) =>
  chunks.map((chunk) => (chunk.type === 'text-delta' ? chunk.delta : '')).join('');

const user = (text: string, id = 'm1'): UIMessage => ({ id, role: 'user', parts: [{ type: 'text', text }] });
const waitForRequests = async (requests: unknown[], count: number) => {
  for (let tries = 0; requests.length < count && tries < 100; tries++)
    await new Promise((resolve) => setTimeout(resolve, 5));
};

describe('GenerationChatTransport', () => {
  it('sends a turn as a generation of the conversation and streams its answer from the store to the end', async () => {
    const generations = new GenerationStore();
    const server = fakeServer({ 'POST /api/ai/generations': () => ({ status: 202, body: { generationId: 'g1' } }) });
    const transport = new GenerationChatTransport({
      url: 'http://server',
      getToken: async () => 'token',
      fetch: server.fetch,
      generations,
      request: { system: 'Be brief.', maxTokens: 50 },
    });
    const stream = await transport.sendMessages({
      trigger: 'submit-message',
      chatId: 'chat-1',
      messageId: undefined,
      messages: [user('Hello'), { id: 'a0', role: 'assistant', parts: [] }, user('Again', 'm2')],
      abortSignal: undefined,
      body: { temperature: 0.5 },
    });
    expect(server.requests[0]?.body).toEqual({
      system: 'Be brief.',
      maxTokens: 50,
      temperature: 0.5,
      messages: [
        { role: 'user', content: 'Hello' },
        { role: 'user', content: 'Again' },
      ],
      conversationId: 'chat-1',
    });
    generations.apply(event('ai.generation.started', { generationId: 'g1' }));
    generations.apply(event('ai.generation.delta', { generationId: 'g1', seq: 0, text: 'It was ' }));
    // A resume's snapshot and a duplicate delta change nothing already shown.
    generations.apply(event('ai.generation.snapshot', { generationId: 'g1', seq: 0, text: 'It was ' }));
    generations.apply(event('ai.generation.delta', { generationId: 'g1', seq: 0, text: 'It was ' }));
    generations.apply(event('ai.generation.delta', { generationId: 'g1', seq: 1, text: 'a dark' }));
    generations.apply(event('ai.generation.completed', { generationId: 'g1', text: 'It was a dark night.' }));
    const chunks = await read(stream);
    expect(chunks[0]).toEqual({ type: 'start', messageId: 'g1', messageMetadata: { status: 'running' } });
    expect(chunks[1]).toEqual({ type: 'text-start', id: 'text-g1' });
    expect(textOf(chunks)).toBe('It was a dark night.');
    expect(chunks.slice(-2)).toEqual([
      { type: 'text-end', id: 'text-g1' },
      { type: 'finish', finishReason: 'stop', messageMetadata: { status: 'completed' } },
    ]);
  });

  it('stop() cancels the generation on the server', async () => {
    const generations = new GenerationStore();
    const server = fakeServer({
      'POST /api/ai/generations': () => ({ status: 202, body: { generationId: 'g2' } }),
      'POST /api/ai/generations/g2/cancel': () => ({ status: 202, body: { generationId: 'g2' } }),
    });
    const transport = new GenerationChatTransport({
      url: 'http://server',
      getToken: async () => 't',
      fetch: server.fetch,
      generations,
    });
    const abort = new AbortController();
    const stream = await transport.sendMessages({
      trigger: 'submit-message',
      chatId: 'chat-2',
      messageId: undefined,
      messages: [user('Hi')],
      abortSignal: abort.signal,
    });
    generations.apply(event('ai.generation.delta', { generationId: 'g2', seq: 0, text: 'Some' }));
    abort.abort();
    expect(textOf(await read(stream))).toBe('Some');
    await waitForRequests(server.requests, 2);
    expect(server.requests.map((request) => `${request.method} ${request.path}`)).toEqual([
      'POST /api/ai/generations',
      'POST /api/ai/generations/g2/cancel',
    ]);
  });

  it('reconnects to the running turn from its text so far; a reconnect superseded by another is no stop', async () => {
    const generations = new GenerationStore();
    const view: ConversationView = {
      conversationId: 'chat-3',
      title: 'Hi',
      createdAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:00:00.000Z',
      runningGenerationId: 'g3',
      turns: [
        { generationId: 'g3', prompt: 'Hi', status: 'running', text: 'Once', createdAt: '2026-01-01T00:00:00.000Z' },
      ],
    };
    const server = fakeServer({
      'GET /api/ai/conversations/chat-3': () => ({ status: 200, body: view }),
      'GET /api/ai/generations/g3': () => ({
        status: 200,
        body: { generationId: 'g3', status: 'running', text: 'Once upon', seq: 3 },
      }),
      'POST /api/ai/generations/g3/cancel': () => ({ status: 202, body: { generationId: 'g3' } }),
    });
    const transport = new GenerationChatTransport({
      url: 'http://server',
      getToken: async () => 't',
      fetch: server.fetch,
      generations,
    });
    expect(await transport.reconnectToStream({ chatId: 'nothing-here' })).toBeNull();

    const first = new AbortController();
    const superseded = await transport.reconnectToStream({ chatId: 'chat-3', abortSignal: first.signal });
    expect(superseded).not.toBeNull();
    // useChat aborts a reconnect, then starts the next one at once (a remount).
    first.abort();
    const second = new AbortController();
    const stream = await transport.reconnectToStream({ chatId: 'chat-3', abortSignal: second.signal });
    const opening = await read(stream!, 3);
    expect(opening[2]).toEqual({ type: 'text-delta', id: 'text-g3', delta: 'Once upon' });
    generations.apply(event('ai.generation.delta', { generationId: 'g3', seq: 3, text: ' again' }));
    generations.apply(event('ai.generation.delta', { generationId: 'g3', seq: 4, text: ' a time' }));
    second.abort();
    expect(textOf(await read(stream!))).toBe(' a time');
    await waitForRequests(
      server.requests.filter((request) => request.path.endsWith('/cancel')),
      1,
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    // One cancel: the stop, not the superseded reconnect.
    expect(server.requests.filter((request) => request.path.endsWith('/cancel'))).toHaveLength(1);
  });

  it('ends a failed answer with its error, a cancelled one with an abort', async () => {
    const generations = new GenerationStore();
    let created = 0;
    const server = fakeServer({
      'POST /api/ai/generations': () => ({ status: 202, body: { generationId: `g4-${++created}` } }),
    });
    const transport = new GenerationChatTransport({
      url: 'http://server',
      getToken: async () => 't',
      fetch: server.fetch,
      generations,
    });
    const send = () =>
      transport.sendMessages({
        trigger: 'submit-message',
        chatId: 'c',
        messageId: undefined,
        messages: [user('x')],
        abortSignal: undefined,
      });
    const failing = await send();
    generations.apply(event('ai.generation.failed', { generationId: 'g4-1', error: 'the model refused' }));
    expect((await read(failing)).slice(-2)).toEqual([
      { type: 'message-metadata', messageMetadata: { status: 'failed', error: 'the model refused' } },
      { type: 'error', errorText: 'the model refused' },
    ]);
    const cancelled = await send();
    generations.apply(event('ai.generation.delta', { generationId: 'g4-2', seq: 0, text: 'Partial' }));
    generations.apply(event('ai.generation.cancelled', { generationId: 'g4-2' }));
    // Through the AI SDK's own reading of a message stream, as useChat does: the answer keeps its
    // text and says it was stopped.
    let answer: UIMessage | undefined;
    for await (const message of readUIMessageStream({ stream: cancelled })) answer = message;
    expect(answer?.parts).toEqual([{ type: 'text', text: 'Partial', state: 'done' }]);
    expect(answerMetadataOf(answer!)).toEqual({ status: 'cancelled' });
  });

  it('refuses a turn the server refuses, with its error message', async () => {
    const server = fakeServer({
      'POST /api/ai/generations': () => ({
        status: 429,
        body: { error: { code: 'rate_limited', message: 'slow down' } },
      }),
    });
    const transport = new GenerationChatTransport({
      url: 'http://server',
      getToken: async () => 't',
      fetch: server.fetch,
      generations: new GenerationStore(),
    });
    await expect(
      transport.sendMessages({
        trigger: 'submit-message',
        chatId: 'c',
        messageId: undefined,
        messages: [user('x')],
        abortSignal: undefined,
      }),
    ).rejects.toMatchObject({ status: 429, code: 'rate_limited', message: 'slow down' });
  });
});

describe('messages of a stored conversation', () => {
  const view: ConversationView = {
    conversationId: 'c',
    title: 't',
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    turns: [
      { generationId: 'g1', prompt: 'Q1', status: 'completed', text: 'A1', createdAt: '2026-01-01T00:00:00.000Z' },
      { generationId: 'g2', prompt: 'Q2', status: 'running', text: 'A2 so', createdAt: '2026-01-01T00:00:00.000Z' },
    ],
  };
  const at = '2026-01-01T00:00:00.000Z';

  it('say how each answer stands: stopped and failed ones are marked as such', () => {
    const settled = conversationMessages({
      ...view,
      turns: [
        { generationId: 'g3', prompt: 'Q3', status: 'cancelled', text: 'Half', createdAt: at },
        { generationId: 'g4', prompt: 'Q4', status: 'failed', text: '', error: 'the model refused', createdAt: at },
      ],
    });
    expect(settled.filter((message) => message.role === 'assistant').map(answerMetadataOf)).toEqual([
      { status: 'cancelled' },
      { status: 'failed', error: 'the model refused' },
    ]);
    expect(conversationMessages(view).map(answerMetadataOf)).toEqual([
      undefined,
      { status: 'completed' },
      undefined,
      { status: 'running' },
    ]);
  });

  it('are the turns as user and assistant messages, the answers by their generation id', () => {
    const messages = conversationMessages(view);
    expect(messages.map((message) => [message.id, message.role])).toEqual([
      ['g1:user', 'user'],
      ['g1', 'assistant'],
      ['g2:user', 'user'],
      ['g2', 'assistant'],
    ]);
    expect(toGenerationMessages(messages)).toEqual([
      { role: 'user', content: 'Q1' },
      { role: 'assistant', content: 'A1' },
      { role: 'user', content: 'Q2' },
      { role: 'assistant', content: 'A2 so' },
    ]);
  });

  it('keep the opened text of a resumed answer until the live one catches up', () => {
    const opened = conversationMessages(view);
    const cleared = opened.map((message) => (message.id === 'g2' ? { ...message, parts: [] } : message));
    expect(withOpenedText(cleared, opened).at(-1)?.parts).toEqual([
      { type: 'text', text: 'A2 so', state: 'streaming' },
    ]);
    const caughtUp = opened.map((message) =>
      message.id === 'g2' ? { ...message, parts: [{ type: 'text' as const, text: 'A2 so far' }] } : message,
    );
    expect(withOpenedText(caughtUp, opened).at(-1)?.parts).toEqual([{ type: 'text', text: 'A2 so far' }]);
  });
});
