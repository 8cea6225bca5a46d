import type { FastifyInstance } from 'fastify';
import { buildApp, type AppDependencies } from '../../../../apps/backend/src/app.js';
import { signDevToken } from '../../src/adapters/auth/dev-token.js';
import { parseConfig } from '../../../../apps/backend/src/config.js';
import { PgliteEventStore } from '../../src/adapters/store/pglite-event-store.js';
import { DEMO_TASK_KINDS } from '../../../../apps/backend/src/task-kinds/demo-task-kinds.js';

/** HS256 secret every test server and test token share. */
export const TEST_JWT_SECRET = 'test-secret-0123456789-0123456789-0123456789';

/** A server listening on 127.0.0.1:<random port>, with helpers to talk to it. */
export interface TestApp {
  app: FastifyInstance;
  url: string;
  /** Signs a token for `userId` (1 h unless `expiresIn` seconds are given). */
  token(
    userId: string,
    claims?: { topics?: string[]; scope?: string; publishTopics?: string[]; expiresIn?: number },
  ): Promise<string>;
  /** Publishes through the HTTP API with a publisher token; resolves with the status and body. */
  publish(event: {
    topic: string;
    type?: string;
    payload?: unknown;
    critical?: boolean;
  }): Promise<{ status: number; id: string }>;
  close(): Promise<void>;
}

/**
 * Starts the real app in-process on port 0 with an in-memory PGlite store (unless one is given)
 * and `env` on top of test defaults.
 */
export async function startTestApp(
  env: Record<string, string> = {},
  dependencies: Partial<Omit<AppDependencies, 'config'>> = {},
): Promise<TestApp> {
  const config = parseConfig({
    NODE_ENV: 'test',
    PORT: '0',
    LOG_LEVEL: 'silent',
    JWT_SECRET: TEST_JWT_SECRET,
    PUBLISH_RATE_MAX: '1000000',
    PUBLISH_TOPIC_RATE_MAX: '1000000',
    SHUTDOWN_DRAIN_MS: '50',
    ...env,
  });
  const store = dependencies.store ?? new PgliteEventStore();
  const app = await buildApp({ config, taskKinds: DEMO_TASK_KINDS, ...dependencies, store });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  const url = `http://127.0.0.1:${address.port}`;
  const token: TestApp['token'] = (userId, claims = {}) =>
    signDevToken(config.jwt.kind === 'secret' ? config.jwt.secret : TEST_JWT_SECRET, {
      userId,
      expiresIn: claims.expiresIn ?? 3600,
      ...(claims.topics ? { topics: claims.topics } : {}),
      ...(claims.scope ? { scope: claims.scope } : {}),
      ...(claims.publishTopics ? { publishTopics: claims.publishTopics } : {}),
    });
  const publisherToken = await token('publisher', { scope: 'events:publish' });
  return {
    app,
    url,
    token,
    async publish(event) {
      const response = await fetch(`${url}/api/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${publisherToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          type: 'notification',
          payload: { title: 'test', level: 'info' },
          ...event,
        }),
      });
      const body = (await response.json()) as { id: string };
      return { status: response.status, id: body.id };
    },
    close: () => app.close(),
  };
}

/** `POST /api/events` with `body` as given (a string is sent verbatim) and, when given, a Bearer `token`. */
export function publishRaw(server: TestApp, body: unknown, token?: string): Promise<Response> {
  return fetch(`${server.url}/api/events`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}
