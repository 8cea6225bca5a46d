import type { FastifyInstance } from 'fastify';
import type { EventBus } from '../bus/event-bus.js';
import { AppError } from '../errors.js';
import type { EventStore } from '../store/event-store.js';
import type { ComponentHealth } from '../events/event-record.js';
import type { Metrics } from './metrics.js';

/** Options of {@link registerHealthRoutes}. */
export interface HealthRoutesOptions {
  bus: EventBus;
  store: EventStore;
  metrics: Metrics;
  metricsToken: string | undefined;
  isClosing: () => boolean;
}

/** `/healthz` (alive), `/readyz` (can serve: ok / degraded / 503) and `/metrics` (Prometheus). */
export function registerHealthRoutes(app: FastifyInstance, options: HealthRoutesOptions): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const [bus, store] = await Promise.all([
      safeHealth(() => options.bus.health()),
      safeHealth(() => options.store.health()),
    ]);
    const parts = [bus, store];
    const down = options.isClosing() || parts.some((part) => part.status === 'down');
    const status = down ? 'unavailable' : parts.some((part) => part.status === 'degraded') ? 'degraded' : 'ok';
    reply.code(down ? 503 : 200);
    return { status, bus: { kind: options.bus.kind, ...bus }, store: { kind: options.store.kind, ...store } };
  });

  app.get('/metrics', async (request, reply) => {
    if (options.metricsToken !== undefined && request.headers.authorization !== `Bearer ${options.metricsToken}`) {
      throw new AppError('unauthorized', 'metrics need "Authorization: Bearer <METRICS_TOKEN>"');
    }
    reply.header('content-type', options.metrics.registry.contentType);
    return options.metrics.registry.metrics();
  });
}

async function safeHealth(check: () => Promise<ComponentHealth>): Promise<ComponentHealth> {
  try {
    return await check();
  } catch (error) {
    return { status: 'down', detail: (error as Error).message };
  }
}
