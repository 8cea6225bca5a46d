import { createSSEClient, type SSEClient } from '@infinitescribe/client';
import type { CompletionChunk, CompletionRequest, HostAIProvider } from '@infinitescribe/server';
import type { FastifyInstance } from 'fastify';
import { SignJWT } from 'jose';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { buildWritingApp, type AppEvents } from '../src/app.js';

const SECRET = 'writing-app-test-secret-0123456789-abcdef';
const dataDir = mkdtempSync(path.join(tmpdir(), 'writing-app-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

/** What the app's own login would issue. */
function token(userId: string, scope?: string): Promise<string> {
  return new SignJWT({ ...(scope ? { scope } : {}) })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(userId)
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(SECRET));
}

/**
 * A model of the test's own, written against the plugin's documented port (`stream(request,
 * signal)`): one word per `wordMs`, stopping when the signal aborts; it records every prompt.
 */
function scriptedModel(wordMs: number): HostAIProvider & { prompts: string[] } {
  const prompts: string[] = [];
  return {
    prompts,
    info: { label: 'scripted', model: 'scripted-1' },
    async *stream(request: CompletionRequest, signal: AbortSignal): AsyncIterable<CompletionChunk> {
      const prompt = request.messages.at(-1)?.content ?? '';
      prompts.push(prompt);
      const words = Math.min(request.maxTokens, 12);
      for (let index = 0; index < words; index++) {
        await delay(wordMs, undefined, { signal }).catch(() => undefined);
        if (signal.aborted) throw Object.assign(new Error('aborted'), { name: 'AbortError' });
        yield { type: 'delta', text: `${index === 0 ? '' : ' '}word${index}` };
      }
    },
  };
}

interface Running {
  app: FastifyInstance;
  base: string;
}
const running: Running[] = [];
const clients: SSEClient<AppEvents>[] = [];

async function start(model: HostAIProvider): Promise<Running> {
  const app = await buildWritingApp({ jwtSecret: SECRET, dataDir, aiProvider: model });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  const server = { app, base: `http://127.0.0.1:${address.port}` };
  running.push(server);
  return server;
}

async function stop(server: Running): Promise<void> {
  running.splice(running.indexOf(server), 1);
  await server.app.close();
}

/** A browser's client, in Node: the client package with its fetch transport, under the app's prefix. */
async function connect(server: Running, userId: string): Promise<SSEClient<AppEvents>> {
  const userToken = await token(userId);
  const client = createSSEClient<AppEvents>({ url: `${server.base}/realtime`, getToken: async () => userToken });
  clients.push(client);
  await waitFor(() => client.getSnapshot().state === 'open');
  return client;
}

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await delay(10);
  }
}

async function post(server: Running, url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.base}${url}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-user-id': 'ana', ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const server of running.splice(0)) await server.app.close();
});

describe('the example writing app: its own Fastify backend with the realtime layer mounted beside its routes', () => {
  it('publishes its own event type in-process and over HTTP; the client package receives it typed, under the prefix', async () => {
    const server = await start(scriptedModel(1));
    const client = await connect(server, 'ana');
    const comments: { id: string; text: string; docId: string }[] = [];
    client.on('comment.added', (event) => comments.push({ id: event.id, ...event.payload }));

    const doc = await post(server, '/documents', { title: 'Draft', text: 'Once upon a time.' });
    expect(doc.status).toBe(201);
    const comment = await post(server, `/documents/${String(doc.body['id'])}/comments`, { text: 'Nice start' });
    // Critical by the type's definition: answered once stored.
    expect(comment.status).toBe(201);
    await waitFor(() => comments.length === 1);
    expect(comments[0]).toMatchObject({ id: comment.body['eventId'], text: 'Nice start', docId: doc.body['id'] });

    // The same type through the HTTP API, by a service of the team's.
    const service = await token('reviews-service', 'events:publish events:service');
    const published = await fetch(`${server.base}/realtime/api/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${service}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        topic: 'user:ana',
        type: 'comment.added',
        payload: { docId: 'd2', commentId: 'c2', text: 'From a service' },
      }),
    });
    expect(published.status).toBe(201);
    await waitFor(() => comments.length === 2);
    expect(comments[1]?.text).toBe('From a service');

    // A payload that is not the type's: 400 over HTTP, invalid_event in-process; nothing delivered.
    const bad = await fetch(`${server.base}/realtime/api/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${service}`, 'content-type': 'application/json' },
      body: JSON.stringify({ topic: 'user:ana', type: 'comment.added', payload: { docId: 7 } }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('invalid_event');
    await expect(
      // @ts-expect-error the payload is not the type's: the compiler says so too
      server.app.realtime.publish({ topic: 'user:ana', type: 'comment.added', payload: { docId: 7 } }),
    ).rejects.toMatchObject({ code: 'invalid_event' });
    await expect(
      // @ts-expect-error server-emitted types are the server's alone
      server.app.realtime.publish({ topic: 'user:ana', type: 'task.completed', payload: { taskId: 'x' } }),
    ).rejects.toMatchObject({ code: 'forbidden_type' });
    await delay(100);
    expect(comments).toHaveLength(2);

    // The app's own routes keep working beside the plugin, and /docs lists its types.
    expect((await fetch(`${server.base}/health`)).status).toBe(200);
    const docs = (await (await fetch(`${server.base}/realtime/docs/json`)).json()) as {
      components: { schemas: Record<string, unknown> };
    };
    expect(Object.keys(docs.components.schemas)).toEqual(
      expect.arrayContaining(['payload.comment.added', 'payload.document.renamed']),
    );
  });

  it('runs its own task kind, calling the provider it was given, to completion; and cancels one', async () => {
    const model = scriptedModel(2);
    const server = await start(model);
    const client = await connect(server, 'ana');
    const outcomes = new Map<string, { type: string; result?: unknown }>();
    client.on('task.completed', ({ payload }) =>
      outcomes.set(payload.taskId, { type: 'completed', result: payload.result }),
    );
    client.on('task.cancelled', ({ payload }) => outcomes.set(payload.taskId, { type: 'cancelled' }));

    const doc = await post(server, '/documents', { title: 'Essay', text: 'The harbour at dawn.' });
    const { body } = await post(server, `/documents/${String(doc.body['id'])}/summaries`, {});
    const taskId = String(body['taskId']);
    await waitFor(() => outcomes.has(taskId));
    expect(outcomes.get(taskId)).toMatchObject({
      type: 'completed',
      result: { outline: expect.stringContaining('word0'), summary: expect.stringContaining('word0') },
    });
    expect(model.prompts.map((prompt) => prompt.split(':')[0])).toEqual([
      'Outline this document',
      'Summarise from this outline',
    ]);
    expect(await server.app.realtime.tasks.get('ana', taskId)).toMatchObject({ status: 'completed', percent: 100 });

    const slow = await server.app.realtime.tasks.start({
      userId: 'ana',
      kind: 'summarize-document',
      input: { text: 'x' },
    });
    await server.app.realtime.tasks.cancel('ana', slow.taskId);
    await waitFor(() => outcomes.has(slow.taskId));
    expect(outcomes.get(slow.taskId)?.type).toBe('cancelled');
  });

  it('continues a task cut by a clean restart after its last finished stage, without asking the model again', async () => {
    const first = scriptedModel(40);
    let server = await start(first);
    const doc = await post(server, '/documents', { title: 'Long', text: 'A long document.' });
    const { body } = await post(server, `/documents/${String(doc.body['id'])}/summaries`, {});
    const taskId = String(body['taskId']);
    // Into the second stage (the outline is done and recorded), then the app stops.
    await waitFor(() => first.prompts.length === 2, 15_000);
    await stop(server);

    const second = scriptedModel(1);
    server = await start(second);
    const restarted = server;
    let status = '';
    const deadline = Date.now() + 15_000;
    while (status !== 'completed' && Date.now() < deadline) {
      status = (await restarted.app.realtime.tasks.get('ana', taskId)).status;
      await delay(20);
    }
    expect(await server.app.realtime.tasks.get('ana', taskId)).toMatchObject({
      status: 'completed',
      result: { outline: expect.stringContaining('word'), summary: expect.stringContaining('word') },
    });
    // The restarted app asked only for the summary: the outline came from the hand-over.
    expect(second.prompts.map((prompt) => prompt.split(':')[0])).toEqual(['Summarise from this outline']);
  });
});
