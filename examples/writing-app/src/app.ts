/**
 * A team's own backend, as it might have looked before realtime: Fastify, its own routes for
 * documents and comments. The realtime layer is mounted beside them under /realtime; the routes
 * publish in-process with `app.realtime.publish`, and a task kind of the app's own runs on the
 * realtime layer's job runner.
 */
import {
  defineEventType,
  realtimePlugin,
  registerNotFound,
  type EventMapOf,
  type HostAIProvider,
} from '@infinitescribe/server';
import Fastify, { type FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { summarizeDocument } from './summarize-task.js';

/** The app's own event types: typed on publish here and in the browser (`AppEvents`). */
export const eventTypes = [
  defineEventType('comment.added', z.strictObject({ docId: z.string(), commentId: z.string(), text: z.string() }), {
    description: 'A comment on a document; critical, so a reconnecting reviewer never misses one.',
    critical: true,
  }),
  defineEventType('document.renamed', z.strictObject({ docId: z.string(), title: z.string().min(1).max(200) })),
] as const;

/** What the browser types its subscription with: `createSSEClient<AppEvents>(…)`. */
export type AppEvents = EventMapOf<typeof eventTypes>;

declare module '@infinitescribe/server' {
  // The in-process publish takes exactly the types above.
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface RealtimeEventMap extends AppEvents {}
}

/** Options of {@link buildWritingApp}. */
export interface WritingAppOptions {
  /** HS256 secret shared with the app's login (which issues the tokens). */
  jwtSecret: string;
  /** Where the embedded store keeps its data. */
  dataDir: string;
  /** The model; default: the realtime layer's offline demo provider. */
  aiProvider?: HostAIProvider;
  logger?: boolean;
}

interface Doc {
  id: string;
  owner: string;
  title: string;
  text: string;
}

/** The app: its own routes, and the realtime layer under /realtime. */
export async function buildWritingApp(options: WritingAppOptions): Promise<FastifyInstance> {
  // The plugin opens its store while it registers; give it more than Fastify's default 10 s on a busy machine.
  const app = Fastify({ logger: options.logger ?? false, pluginTimeout: 60_000 });
  await app.register(realtimePlugin, {
    prefix: '/realtime',
    jwt: { secret: options.jwtSecret },
    dataDir: options.dataDir,
    eventTypes,
    taskKinds: [summarizeDocument],
    ...(options.aiProvider ? { aiProvider: options.aiProvider } : {}),
  });
  registerNotFound(app);

  // The app's own data, kept simply: a real app has its database here.
  const docs = new Map<string, Doc>();
  const ownerOf = (request: { headers: Record<string, unknown> }): string => {
    const user = request.headers['x-user-id'];
    if (typeof user !== 'string' || user === '')
      throw Object.assign(new Error('x-user-id missing'), { statusCode: 401 });
    return user;
  };

  app.get('/health', async () => ({ ok: true }));

  app.post('/documents', async (request, reply) => {
    const body = z.strictObject({ title: z.string().min(1), text: z.string() }).parse(request.body);
    const doc: Doc = { id: randomUUID(), owner: ownerOf(request), ...body };
    docs.set(doc.id, doc);
    reply.code(201);
    return doc;
  });

  app.post<{ Params: { id: string } }>('/documents/:id/comments', async (request, reply) => {
    const doc = docs.get(request.params.id);
    if (!doc) return reply.code(404).send({ error: 'no such document' });
    const { text } = z.strictObject({ text: z.string().min(1) }).parse(request.body);
    const commentId = randomUUID();
    // Critical by its definition: answered once stored, delivered to every reader of the doc's owner.
    const { id } = await app.realtime.publish({
      topic: `user:${doc.owner}`,
      type: 'comment.added',
      payload: { docId: doc.id, commentId, text },
    });
    reply.code(201);
    return { commentId, eventId: id };
  });

  app.post<{ Params: { id: string } }>('/documents/:id/summaries', async (request, reply) => {
    const doc = docs.get(request.params.id);
    if (!doc) return reply.code(404).send({ error: 'no such document' });
    // The same job runner as POST /realtime/api/tasks: progress, cancel, restarts, limits.
    const { taskId } = await app.realtime.tasks.start({
      userId: doc.owner,
      kind: 'summarize-document',
      input: { text: doc.text },
    });
    reply.code(202);
    return { taskId };
  });

  return app;
}
