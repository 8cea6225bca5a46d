import type { FastifyBaseLogger } from 'fastify';
import type { EventBus } from '../adapters/bus/event-bus.js';
import { AppError } from '../core/errors.js';
import type { EventStore } from '../adapters/store/event-store.js';
import type { ComponentHealth } from '../core/event-record.js';
import type { Metrics, ReadinessReport } from '../adapters/observability/metrics.js';
import { liveness, readiness as readinessAnswer } from './api-schemas.js';
import { defineRoute, type RouteDefinition } from './route-definition.js';

/** Options of {@link healthRoutes}. */
export interface HealthRoutesOptions {
  bus: EventBus;
  store: EventStore;
  metrics: Metrics;
  metricsToken: string | undefined;
  isClosing: () => boolean;
  log: FastifyBaseLogger;
}

/** `/healthz` (alive), `/readyz` (can serve: ok / degraded / 503) and `/metrics` (Prometheus). */
export function healthRoutes(options: HealthRoutesOptions): RouteDefinition[] {
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
        options.log.warn({ component, status: health.status, cause: health.cause }, `${component} is ${health.status}`);
      }
    }
    return withoutCauses(report);
  };
  options.metrics.setReadinessSource(checkReadiness);

  return [
    defineRoute({
      method: 'GET',
      url: '/healthz',
      operationId: 'liveness',
      tag: 'operations',
      summary: 'Liveness: 200 while the process runs',
      credentials: [],
      answers: { 200: { description: 'Alive.', schema: liveness } },
      errors: [],
      handler: async () => ({ status: 'ok' }),
    }),
    defineRoute({
      method: 'GET',
      url: '/readyz',
      operationId: 'readiness',
      tag: 'operations',
      summary: 'Readiness: ok, degraded (still serving), or 503',
      description:
        '503 only when this instance cannot serve streams (shutting down, bus down or wedged). A ' +
        'store that is down, or Redis unreachable (local delivery), is `degraded` with 200.',
      credentials: [],
      answers: {
        200: { description: '`ok` or `degraded`.', schema: readinessAnswer },
        503: { description: '`unavailable`: take this instance out of rotation.', schema: readinessAnswer },
      },
      errors: [],
      handler: async ({ reply }) => {
        const report = await checkReadiness();
        reply.code(report.status === 'unavailable' ? 503 : 200);
        return report;
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/metrics',
      operationId: 'metrics',
      tag: 'operations',
      summary: 'Prometheus metrics',
      description: 'Public unless METRICS_TOKEN is set; then `Authorization: Bearer <METRICS_TOKEN>`.',
      credentials: ['metricsToken'],
      answers: { 200: { description: 'Prometheus text format 0.0.4.', contentType: 'text/plain; version=0.0.4' } },
      errors: ['unauthorized'],
      handler: async ({ request, reply }) => {
        if (options.metricsToken !== undefined && request.headers.authorization !== `Bearer ${options.metricsToken}`) {
          throw new AppError('unauthorized', 'metrics need "Authorization: Bearer <METRICS_TOKEN>"');
        }
        reply.header('content-type', options.metrics.registry.contentType);
        return options.metrics.registry.metrics();
      },
    }),
  ];
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
