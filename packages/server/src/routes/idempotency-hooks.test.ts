import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { registerErrorHandling } from './error-handler.js';
import { createLogger } from '../adapters/observability/logger.js';
import { Metrics } from '../adapters/observability/metrics.js';
import { createIdempotencyHooks } from './idempotency-hooks.js';
import type { IdempotencyStore } from '../adapters/idempotency/idempotency-store.js';
import { MemoryIdempotencyStore } from '../adapters/idempotency/memory-idempotency-store.js';

/** A route whose handler waits for `gate` and answers 202 with a counter; keys scoped by `x-user`. */
async function appWith(store: IdempotencyStore, options: { waitMs?: number; gate?: () => Promise<void> } = {}) {
  const app = Fastify();
  const logger = createLogger({ level: 'silent' }) as FastifyBaseLogger;
  registerErrorHandling(app, new Metrics({ defaultMetrics: false }));
  const hooks = createIdempotencyHooks({
    store,
    logger,
    scopeOf: (request) => String(request.headers['x-user']),
    waitMs: options.waitMs,
  });
  let calls = 0;
  app.post('/thing', { preHandler: [hooks.preHandler], onSend: hooks.onSend }, async (_request, reply) => {
    calls++;
    await options.gate?.();
    reply.code(202);
    return { call: calls };
  });
  await app.ready();
  return { app, calls: () => calls };
}

const post = (app: FastifyInstance, key: string, body: unknown = { a: 1 }) =>
  app.inject({
    method: 'POST',
    url: '/thing',
    headers: { 'idempotency-key': key, 'x-user': 'u1', 'content-type': 'application/json' },
    payload: JSON.stringify(body),
  });

describe('createIdempotencyHooks', () => {
  const apps: FastifyInstance[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  it('gives a duplicate 409 idempotency_key_in_flight with Retry-After once it has waited waitMs', async () => {
    let open = (): void => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const { app, calls } = await appWith(new MemoryIdempotencyStore(), { waitMs: 150, gate: () => gate });
    apps.push(app);
    const first = post(app, 'k1');
    await new Promise((resolve) => setTimeout(resolve, 20));
    const startedAt = Date.now();
    const duplicate = await post(app, 'k1');
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(100);
    expect(duplicate.statusCode).toBe(409);
    expect(duplicate.headers['retry-after']).toBe('1');
    expect(duplicate.json()).toMatchObject({ error: { code: 'idempotency_key_in_flight' } });
    open();
    expect((await first).json()).toEqual({ call: 1 });
    expect((await post(app, 'k1')).json()).toEqual({ call: 1 });
    expect(calls()).toBe(1);
  });

  it('answers 503 bus_unavailable when its store fails, running nothing', async () => {
    const broken: IdempotencyStore = {
      begin: () => Promise.reject(new Error('connection refused')),
      complete: () => Promise.resolve(),
      release: () => Promise.resolve(),
      close: () => Promise.resolve(),
    };
    const { app, calls } = await appWith(broken);
    apps.push(app);
    const answer = await post(app, 'k2');
    expect(answer.statusCode).toBe(503);
    expect(answer.headers['retry-after']).toBeDefined();
    expect(answer.json()).toMatchObject({ error: { code: 'bus_unavailable' } });
    expect(calls()).toBe(0);
  });

  it('still answers when storing the answer fails (the claim then lapses)', async () => {
    const store = new MemoryIdempotencyStore();
    const failing: IdempotencyStore = {
      begin: (key, fingerprint) => store.begin(key, fingerprint),
      complete: () => Promise.reject(new Error('Redis went away')),
      release: (claim) => store.release(claim),
      close: () => store.close(),
    };
    const { app } = await appWith(failing);
    apps.push(app);
    const answer = await post(app, 'k3');
    expect(answer.statusCode).toBe(202);
    expect(answer.json()).toEqual({ call: 1 });
  });
});
