import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../apps/backend/src/config.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

type Json = Record<string, unknown>;

/** `route` is "<METHOD> <path>". */
async function call(
  server: TestApp,
  token: string,
  route: `${'GET' | 'POST' | 'DELETE'} /${string}`,
  body?: unknown,
): Promise<{ status: number; body: Json }> {
  const [method, path] = route.split(' ') as [string, string];
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Json) };
}

async function ask(
  server: TestApp,
  token: string,
  turn: { conversationId: string; content: string; maxTokens?: number },
): Promise<string> {
  const { conversationId, content, maxTokens = 30 } = turn;
  const started = await call(server, token, 'POST /api/ai/generations', {
    messages: [{ role: 'user', content }],
    maxTokens,
    conversationId,
  });
  expect(started.status, JSON.stringify(started.body)).toBe(202);
  return started.body['generationId'] as string;
}

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`still ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const settled = (server: TestApp, token: string, id: string) =>
  until(
    () => call(server, token, `GET /api/ai/generations/${id}`),
    (answer) => answer.body['status'] !== 'running',
  );

describe('conversations: chat turns kept per user', () => {
  let server: TestApp;
  afterEach(async () => {
    await server?.close();
  });

  it('records each turn with its answer, lists and reopens them for their owner only', async () => {
    server = await startTestApp({ AI_OFFLINE_TOKENS_PER_SECOND: '2000' });
    const alice = await server.token('alice');
    const bob = await server.token('bob');
    const first = await ask(server, alice, {
      conversationId: 'chat-1',
      content: 'It is a truth universally acknowledged',
    });
    const firstAnswer = await settled(server, alice, first);
    const second = await ask(server, alice, { conversationId: 'chat-1', content: 'Tell me more' });
    const secondAnswer = await settled(server, alice, second);

    const conversation = await until(
      () => call(server, alice, 'GET /api/ai/conversations/chat-1'),
      (answer) =>
        (answer.body['turns'] as Json[] | undefined)?.every((turn) => turn['status'] === 'completed') ?? false,
    );
    expect(conversation.status).toBe(200);
    expect(conversation.body).toMatchObject({
      conversationId: 'chat-1',
      title: 'It is a truth universally acknowledged',
    });
    expect(conversation.body['runningGenerationId']).toBeUndefined();
    expect(conversation.body['turns']).toEqual([
      expect.objectContaining({
        generationId: first,
        prompt: 'It is a truth universally acknowledged',
        text: firstAnswer.body['text'],
      }),
      expect.objectContaining({ generationId: second, prompt: 'Tell me more', text: secondAnswer.body['text'] }),
    ]);
    expect(secondAnswer.body['text']).not.toBe('');

    const listed = await call(server, alice, 'GET /api/ai/conversations');
    expect(listed.body['conversations']).toEqual([expect.objectContaining({ conversationId: 'chat-1', turnCount: 2 })]);

    // Bob sees none of it: 404 in the API's error shape, exactly as for an id nobody used.
    for (const method of ['GET', 'DELETE'] as const) {
      const theirs = await call(server, bob, `${method} /api/ai/conversations/chat-1`);
      expect(theirs.status).toBe(404);
      expect(theirs.body).toEqual({ error: { code: 'not_found', message: expect.any(String) } });
    }
    expect((await call(server, bob, 'GET /api/ai/conversations')).body).toEqual({ conversations: [] });
    // Bob's own chat-1 is another conversation.
    await settled(server, bob, await ask(server, bob, { conversationId: 'chat-1', content: 'Bob asks' }));
    expect((await call(server, alice, 'GET /api/ai/conversations/chat-1')).body['title']).toBe(
      'It is a truth universally acknowledged',
    );

    expect((await call(server, alice, 'DELETE /api/ai/conversations/chat-1')).status).toBe(204);
    expect((await call(server, alice, 'GET /api/ai/conversations/chat-1')).status).toBe(404);
    expect((await call(server, bob, 'GET /api/ai/conversations/chat-1')).body['title']).toBe('Bob asks');
  });

  it('names the running generation, lists it among the running ones, and records a cancel as the outcome', async () => {
    server = await startTestApp({ AI_OFFLINE_TOKENS_PER_SECOND: '10' });
    const alice = await server.token('alice');
    const bob = await server.token('bob');
    const running = await ask(server, alice, {
      conversationId: 'slow-chat',
      content: 'A long answer please',
      maxTokens: 400,
    });
    const plain = await call(server, alice, 'POST /api/ai/generations', { prompt: 'not a chat', maxTokens: 400 });

    const live = await call(server, alice, 'GET /api/ai/generations?status=running');
    expect(live.status).toBe(200);
    const generations = live.body['generations'] as Json[];
    expect(generations.map((generation) => generation['generationId']).sort()).toEqual(
      [running, plain.body['generationId']].sort(),
    );
    expect(generations.find((generation) => generation['generationId'] === running)).toMatchObject({
      status: 'running',
      conversationId: 'slow-chat',
    });
    expect((await call(server, bob, 'GET /api/ai/generations?status=running')).body).toEqual({ generations: [] });
    expect((await call(server, alice, 'GET /api/ai/generations?status=done')).status).toBe(400);

    const reopened = await call(server, alice, 'GET /api/ai/conversations/slow-chat');
    expect(reopened.body['runningGenerationId']).toBe(running);
    expect((await call(server, alice, 'GET /api/ai/conversations')).body['conversations']).toEqual([
      expect.objectContaining({ conversationId: 'slow-chat', runningGenerationId: running }),
    ]);

    expect((await call(server, alice, `POST /api/ai/generations/${running}/cancel`)).status).toBe(202);
    const after = await until(
      () => call(server, alice, 'GET /api/ai/conversations/slow-chat'),
      (answer) => (answer.body['turns'] as Json[])[0]?.['status'] === 'cancelled',
    );
    expect(after.body['runningGenerationId']).toBeUndefined();
    // A cancelled answer keeps the text it had.
    const cancelled = await call(server, alice, `GET /api/ai/generations/${running}`);
    expect((after.body['turns'] as Json[])[0]?.['text']).toBe(cancelled.body['text']);

    // Deleting a conversation cancels its running answer.
    const other = await ask(server, alice, {
      conversationId: 'to-delete',
      content: 'Another long one',
      maxTokens: 400,
    });
    expect((await call(server, alice, 'DELETE /api/ai/conversations/to-delete')).status).toBe(204);
    expect((await settled(server, alice, other)).body['status']).toBe('cancelled');
    await call(server, alice, `POST /api/ai/generations/${String(plain.body['generationId'])}/cancel`);
  });

  it('pages through conversations without skipping or repeating, and refuses a cursor it did not give', async () => {
    server = await startTestApp({ AI_OFFLINE_TOKENS_PER_SECOND: '2000' });
    const alice = await server.token('alice');
    for (let index = 0; index < 5; index++)
      await settled(
        server,
        alice,
        await ask(server, alice, { conversationId: `c-${index}`, content: `Question ${index}`, maxTokens: 5 }),
      );
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await call(server, alice, `GET /api/ai/conversations?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      seen.push(
        ...(page.body['conversations'] as Json[]).map((conversation) => String(conversation['conversationId'])),
      );
      cursor = page.body['nextCursor'] as string | undefined;
    } while (cursor);
    expect(seen).toEqual(['c-4', 'c-3', 'c-2', 'c-1', 'c-0']);
    const bad = await call(server, alice, 'GET /api/ai/conversations?cursor=nonsense');
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: { code: 'invalid_request' } });
    const badId = await call(server, alice, 'POST /api/ai/generations', {
      prompt: 'x',
      conversationId: 'no spaces',
    });
    expect(badId.status).toBe(400);
  });

  it('takes its retention from CONVERSATION_RETENTION_MS', () => {
    expect(parseConfig({ CONVERSATION_RETENTION_MS: '3600000' }).conversationRetentionMs).toBe(3_600_000);
    expect(parseConfig({}).conversationRetentionMs).toBe(30 * 24 * 3_600_000);
    expect(() => parseConfig({ CONVERSATION_RETENTION_MS: '5' })).toThrow(/CONVERSATION_RETENTION_MS/);
  });
});
