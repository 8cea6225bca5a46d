import Fastify, { type FastifyInstance } from 'fastify';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  defineEventType,
  defineTaskKind,
  realtimeOptionsFromEnv,
  realtimePlugin,
  RealtimeOptionsError,
  REALTIME_ENV_NAMES,
} from '../src/index.js';
import { spawnTracked, TS_SOURCE_ARGS } from './helpers/child-process.js';
import { openStream } from './helpers/sse-reader.js';
import { signDevToken } from '../src/adapters/auth/dev-token.js';

const SECRET = 'plugin-test-secret-0123456789-abcdefgh';
type JsonLike = Record<string, unknown>;
const folders: string[] = [];
const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});
afterAll(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

function dataDir(): string {
  const folder = mkdtempSync(path.join(tmpdir(), 'plugin-test-'));
  folders.push(folder);
  return folder;
}

declare module '../src/plugin/realtime-api.js' {
  // Typed as a host would: the map of its own types (one of the apps below registers it).
  interface RealtimeEventMap {
    'comment.added': { docId: string; text: string };
  }
}

const commentAdded = defineEventType('comment.added', z.strictObject({ docId: z.string(), text: z.string() }), {
  critical: true,
});

async function host(options: Record<string, unknown> = {}): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify({ pluginTimeout: 120_000 });
  apps.push(app);
  await app.register(realtimePlugin, { jwt: { secret: SECRET }, dataDir: dataDir(), ...options });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, url };
}

describe('realtimePlugin options', () => {
  it('fails register with one error naming every problem', async () => {
    const app = Fastify({ pluginTimeout: 120_000 });
    const failure = await app
      .register(realtimePlugin, {
        jwt: { secret: 'short' },
        heartbeatMs: 5,
        // @ts-expect-error not a setting's type
        maxConnectionsPerUser: 'many',
        aiService: 'anthropic',
        redisUrl: 'redis://127.0.0.1:6379',
        redisClusterNodes: ['127.0.0.1:7000'],
      })
      .ready()
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(failure).toBeInstanceOf(RealtimeOptionsError);
    const paths = (failure as RealtimeOptionsError).problems.map((problem) => problem.path.join('.'));
    expect(paths).toEqual(
      expect.arrayContaining([
        'jwt.secret',
        'heartbeatMs',
        'maxConnectionsPerUser',
        'aiModel',
        'aiApiKey',
        'redisClusterNodes',
      ]),
    );
    await app.close();
  });

  it('reads a Redis Cluster from REDIS_CLUSTER_NODES (comma-separated host:port)', () => {
    expect(REALTIME_ENV_NAMES['redisClusterNodes']).toBe('REDIS_CLUSTER_NODES');
    const options = realtimeOptionsFromEnv({ REDIS_CLUSTER_NODES: '10.0.0.1:7000, 10.0.0.2:7001' });
    expect(options.redisClusterNodes).toEqual(['10.0.0.1:7000', '10.0.0.2:7001']);
  });

  it('refuses a custom type that shadows a built-in or server type, naming it, before anything opens', async () => {
    for (const name of ['notification', 'task.completed', 'ai.generation.custom', 'stream.reset', 'bad name']) {
      const app = Fastify({ pluginTimeout: 120_000 });
      const failure = await app
        .register(realtimePlugin, {
          jwt: { secret: SECRET },
          dataDir: dataDir(),
          eventTypes: [defineEventType(name, z.object({}))],
        })
        .ready()
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(String(failure), name).toContain(JSON.stringify(name).slice(1, -1));
      await app.close();
    }
  });
});

describe('realtimePlugin in a host app', () => {
  it('validates, stores and streams the host’s own type, published over HTTP and in-process', async () => {
    const { app, url } = await host({ eventTypes: [commentAdded] });
    const userToken = await signDevToken(SECRET, { userId: 'ana', expiresIn: 600 });
    const stream = await openStream(url, { token: userToken });
    const inProcess = await app.realtime.publish({
      topic: 'user:ana',
      type: 'comment.added',
      payload: { docId: 'd1', text: 'in-process' },
    });
    const publisher = await signDevToken(SECRET, { userId: 'svc', scope: 'events:publish', expiresIn: 600 });
    const overHttp = await fetch(`${url}/api/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${publisher}`, 'content-type': 'application/json' },
      body: JSON.stringify({ topic: 'user:ana', type: 'comment.added', payload: { docId: 'd1', text: 'over HTTP' } }),
    });
    // Critical by its definition: 201, stored.
    expect(overHttp.status).toBe(201);
    await stream.waitFor((events) => events.filter((event) => event.event === 'comment.added').length === 2);
    const comments = stream.events.filter((event) => event.event === 'comment.added');
    expect(comments.map((event) => (JSON.parse(event.data) as { payload: { text: string } }).payload.text)).toEqual([
      'in-process',
      'over HTTP',
    ]);
    expect(comments[0]?.id).toBe(inProcess.id);
    const stored = await app.realtime.internals.store.readAfter({ topics: ['user:ana'], after: 0, limit: 10 });
    expect(stored.map((event) => event.type)).toEqual(['comment.added', 'comment.added']);
    stream.close();

    const bad = await fetch(`${url}/api/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${publisher}`, 'content-type': 'application/json' },
      body: JSON.stringify({ topic: 'user:ana', type: 'comment.added', payload: { docId: 1 } }),
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: 'invalid_event' } });
  });

  it('documents at /docs the task kinds and event types the host registered, next to the built-in ones', async () => {
    const wordCount = defineTaskKind({
      name: 'word-count',
      description: 'Counts the words of a text.',
      input: z.strictObject({ text: z.string().max(1000) }),
      stages: ['Count'],
      run: async ({ input }) => ({ words: input.text.split(/\s+/).length }),
    });
    const { url } = await host({ eventTypes: [commentAdded], taskKinds: [wordCount] });
    const document = (await (await fetch(`${url}/docs/json`)).json()) as {
      paths: Record<string, Record<string, { description?: string; responses: Record<string, JsonLike> }>>;
      components: { schemas: Record<string, JsonLike> };
    };
    const schemas = document.components.schemas;
    // The kinds: the ones GET /api/tasks/kinds answers, each a variant of the start request with its input schema.
    const token = await signDevToken(SECRET, { userId: 'ana', expiresIn: 600 });
    const listed = (await (
      await fetch(`${url}/api/tasks/kinds`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as {
      kinds: { kind: string }[];
    };
    const variants = schemas['TaskRequest']?.['oneOf'] as { title: string; properties: { input: JsonLike } }[];
    expect(variants.map((variant) => variant.title)).toEqual(listed.kinds.map((kind) => kind.kind));
    expect(variants.map((variant) => variant.title)).toContain('word-count');
    expect(variants.find((variant) => variant.title === 'word-count')?.properties.input).toMatchObject({
      properties: { text: { type: 'string', maxLength: 1000 } },
    });
    // The event type: its payload schema, publishable, and one of the stream's frames.
    expect(schemas['payload.comment.added']).toMatchObject({ properties: { docId: { type: 'string' } } });
    const publishable = (schemas['PublishRequest']?.['oneOf'] as { title: string }[]).map((variant) => variant.title);
    expect(publishable).toEqual(expect.arrayContaining(['notification', 'comment.added']));
    const stream = document.paths['/api/sse/stream']?.['get'];
    const frames = (stream?.responses['200']?.['content'] as Record<string, JsonLike>)['text/event-stream']?.[
      'x-sse-events'
    ] as Record<string, unknown>;
    expect(Object.keys(frames)).toEqual(expect.arrayContaining(['notification', 'comment.added', 'heartbeat']));
    expect(stream?.description).toContain('`comment.added`');
  });

  it('mounts every route under the prefix of the context it is registered in, beside the host’s own', async () => {
    const app = Fastify({ pluginTimeout: 120_000 });
    apps.push(app);
    app.get('/api/events', async () => ({ mine: true }));
    await app.register(
      async (scope) => {
        await scope.register(realtimePlugin, { jwt: { secret: SECRET }, dataDir: dataDir() });
      },
      { prefix: '/rt' },
    );
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    expect(await (await fetch(`${url}/api/events`)).json()).toEqual({ mine: true });
    expect((await fetch(`${url}/rt/healthz`)).status).toBe(200);
    const refused = await fetch(`${url}/rt/api/events`, { method: 'POST' });
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: { code: 'unauthorized' } });
  });

  it('keeps two plugins in one process apart: two apps, two stores, two catalogues', async () => {
    const first = await host({ eventTypes: [commentAdded] });
    const second = await host();
    const userToken = await signDevToken(SECRET, { userId: 'ana', expiresIn: 600 });
    const onSecond = await openStream(second.url, { token: userToken });
    await first.app.realtime.publish({ topic: 'user:ana', type: 'comment.added', payload: { docId: 'd', text: 't' } });
    await expect(
      second.app.realtime.publish({ topic: 'user:ana', type: 'comment.added', payload: { docId: 'd', text: 't' } }),
    ).rejects.toMatchObject({ code: 'invalid_event' });
    await second.app.realtime.publish({
      topic: 'user:ana',
      type: 'notification',
      payload: { title: 'second', level: 'info' },
    });
    await onSecond.waitFor((events) => events.some((event) => event.event === 'notification'));
    expect(onSecond.events.some((event) => event.event === 'comment.added')).toBe(false);
    expect(
      await second.app.realtime.internals.store.readAfter({ topics: ['user:ana'], after: 0, limit: 10 }),
    ).toHaveLength(0);
    expect(
      await first.app.realtime.internals.store.readAfter({ topics: ['user:ana'], after: 0, limit: 10 }),
    ).toHaveLength(1);
    onSecond.close();
  });

  it('closes everything it opened: a host process exits by itself after app.close(), mid-stream and mid-job', async () => {
    const script = fileURLToPath(new URL('./fixtures/close-and-exit.ts', import.meta.url));
    const child = spawnTracked(process.execPath, [...TS_SOURCE_ARGS, script, dataDir()]);
    const timeout = setTimeout(() => void child.stop('SIGKILL'), 20_000);
    const code = await child.exited;
    clearTimeout(timeout);
    expect(child.output()).toContain('CLOSED');
    expect(code, child.output()).toBe(0);
  });
});
