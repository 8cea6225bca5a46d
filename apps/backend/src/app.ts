/**
 * The standalone host: a Fastify server configured from the environment, with the realtime plugin,
 * the demo task kinds, the built UI and a 404 in the API's error shape. A team's own backend does
 * the same with its own routes beside the plugin (examples/).
 */
import fastifyStatic from '@fastify/static';
import {
  createLogger,
  realtimePlugin,
  realtimeServerOptions,
  registerNotFound,
  type AIProvider,
  type ErrorCounter,
  type EventBus,
  type EventStore,
  type TicketStore,
  type RunnableTaskKind,
} from '@infinitescribe/server';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Config } from './config.js';
import { DEMO_TASK_KINDS } from './task-kinds/demo-task-kinds.js';

/** What {@link buildApp} needs; the plugin's adapters default to what the configuration selects. */
export interface AppDependencies {
  config: Readonly<Config>;
  logger?: FastifyBaseLogger;
  /** Default: the demo kinds the HTTP contract promises (`demo`, `outline-draft-polish`). */
  taskKinds?: readonly RunnableTaskKind[];
  aiProvider?: AIProvider;
  /** Adapters built elsewhere (tests); default: what the configuration selects. */
  bus?: EventBus;
  store?: EventStore;
  tickets?: TicketStore;
}

const DEFAULT_STATIC_DIR = fileURLToPath(new URL('../../frontend/dist', import.meta.url));

/**
 * Builds the server without listening (so tests can `inject` or listen on port 0). `app.close()`
 * ends streams, hands running jobs over, records the id head and closes what the plugin opened.
 */
export async function buildApp(dependencies: AppDependencies): Promise<FastifyInstance> {
  const { config } = dependencies;
  const logger = dependencies.logger ?? createLogger({ level: config.logLevel });
  // Framework-level errors happen before any route: they are counted once the plugin's metrics exist.
  let countError: ErrorCounter = () => undefined;
  const app = Fastify({
    loggerInstance: logger,
    ...realtimeServerOptions({
      trustProxy: config.trustProxy,
      requestTimeoutMs: config.requestTimeoutMs,
      countError: (code) => countError(code),
    }),
  });
  await app.register(realtimePlugin, {
    ...config.realtime,
    taskKinds: dependencies.taskKinds ?? DEMO_TASK_KINDS,
    ...(dependencies.aiProvider ? { aiProvider: dependencies.aiProvider } : {}),
    adapters: { bus: dependencies.bus, store: dependencies.store, tickets: dependencies.tickets },
  });
  countError = (code) => app.realtime.internals.metrics.errors.inc({ code });
  registerNotFound(app, countError);

  const staticDir = config.staticDir ?? DEFAULT_STATIC_DIR;
  if (existsSync(staticDir)) await app.register(fastifyStatic, { root: staticDir, wildcard: false });
  else app.log.warn({ staticDir }, 'no built UI found; run `npm run build -w apps/frontend` to serve it');
  return app;
}
