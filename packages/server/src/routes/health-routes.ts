import type { FastifyInstance } from 'fastify';
import type { EventBus } from '../adapters/bus/event-bus.js';
import { AppError } from '../core/errors.js';
import type { EventStore } from '../adapters/store/event-store.js';
import type { ComponentHealth } from '../core/event-record.js';
import type { Metrics, ReadinessReport } from '../adapters/observability/metrics.js';

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

  // Raw errors go to the log (once each, not on every probe), never into the public answer.
  const logged = new Map<string, string | undefined>();
  const checkReadiness = async () => {
    const report = await readiness(options);
    for (const [component, health] of [
      ['bus', report.bus],
      ['store', report.store],
    ] as const) {
      if (health.cause === logged.get(component)) continue;
      logged.set(component, health.cause);
      if (health.cause !== undefined) {
        app.log.warn({ component, status: health.status, cause: health.cause }, `${component} is ${health.status}`);
      }
    }
    return withoutCauses(report);
  };
  options.metrics.setReadinessSource(checkReadiness);

  app.get('/readyz', async (_request, reply) => {
    const report = await checkReadiness();
    reply.code(report.status === 'unavailable' ? 503 : 200);
    return report;
  });

  app.get('/metrics', async (request, reply) => {
    if (options.metricsToken !== undefined && request.headers.authorization !== `Bearer ${options.metricsToken}`) {
      throw new AppError('unauthorized', 'metrics need "Authorization: Bearer <METRICS_TOKEN>"');
    }
    reply.header('content-type', options.metrics.registry.contentType);
    return options.metrics.registry.metrics();
  });
}

async function readiness(
  options: HealthRoutesOptions,
): Promise<ReadinessReport & { bus: { kind: string }; store: { kind: string } }> {
  const [bus, store] = await Promise.all([
    safeHealth(() => options.bus.health()),
    safeHealth(() => options.store.health()),
  ]);
  // 503 only when this instance cannot serve streams: shutting down, or a bus that is down
  // (not started, closed, or a wedged subscriber: its streams would get nothing). A store that
  // is down is `degraded`: streams, live delivery, non-critical publishes and hot-log resumes
  // still work, critical publishes get 503 store_unavailable on their own, and every instance
  // shares that store, so taking them all out of rotation would turn a partial outage into a
  // total one. Redis unreachable is `degraded` too (local delivery, see redis-event-bus.ts).
  const down = options.isClosing() || bus.status === 'down';
  const status = down ? 'unavailable' : [bus, store].some((part) => part.status !== 'up') ? 'degraded' : 'ok';
  return { status, bus: { kind: options.bus.kind, ...bus }, store: { kind: options.store.kind, ...store } };
}

async function safeHealth(check: () => Promise<ComponentHealth>): Promise<ComponentHealth> {
  try {
    return await check();
  } catch (error) {
    return { status: 'down', detail: 'health check failed', cause: (error as Error).message };
  }
}

function withoutCauses<TReport extends { bus: ComponentHealth; store: ComponentHealth }>(report: TReport): TReport {
  const { cause: _busCause, ...bus } = report.bus;
  const { cause: _storeCause, ...store } = report.store;
  return { ...report, bus, store };
}
