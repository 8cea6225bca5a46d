import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ComponentHealth } from '../../core/event-record.js';
import type { BreakerState } from '../../core/circuit-breaker.js';

/** Gauge value of each breaker state: higher is worse. */
const BREAKER_STATE_VALUE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

/** What /readyz reports; the metrics mirror it. */
export interface ReadinessReport {
  status: 'ok' | 'degraded' | 'unavailable';
  bus: ComponentHealth;
  store: ComponentHealth;
}

const READINESS_VALUE: Record<ReadinessReport['status'], number> = { ok: 0, degraded: 1, unavailable: 2 };
const HEALTH_VALUE: Record<ComponentHealth['status'], number> = { up: 0, degraded: 1, down: 2 };

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * The server's Prometheus metrics (names as docs/http-api.md lists them). One registry per app instance, not the
 * global one, so several apps can live in one test process without clashing.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly connectionsActive = new Gauge({
    name: 'sse_connections_active',
    help: 'Open SSE streams on this instance',
    registers: [this.registry],
  });
  readonly connectionsTotal = new Counter({
    name: 'sse_connections_total',
    help: 'SSE streams opened since start',
    registers: [this.registry],
  });
  readonly disconnects = new Counter({
    name: 'sse_disconnects_total',
    help: 'SSE streams ended, by reason (slow_consumer: the per-connection buffer overflowed; resync: a live gap on the bus, the client resumes; replay_failed: the stream setup failed)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly eventsPublished = new Counter({
    name: 'sse_events_published_total',
    help: 'Events published through this instance, by type',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly eventsDelivered = new Counter({
    name: 'sse_events_delivered_total',
    help: 'Event frames written to streams (one per event per connection)',
    registers: [this.registry],
  });
  readonly deliveryLatency = new Histogram({
    name: 'sse_event_delivery_latency_seconds',
    help: 'Publish time to the frame being written to the last local stream, per event and instance',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly replayedEvents = new Counter({
    name: 'sse_replayed_events_total',
    help: 'Events written during resumes (replay), stream and poll',
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'sse_errors_total',
    help: 'Error responses by API error code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly streamResets = new Counter({
    name: 'sse_stream_resets_total',
    help: 'stream.reset events sent, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly aiTimeToFirstToken = new Histogram({
    name: 'ai_generation_time_to_first_token_seconds',
    help: 'Generation request to its first delta',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: [this.registry],
  });
  readonly aiInterDeltaGap = new Histogram({
    name: 'ai_generation_inter_delta_seconds',
    help: 'Time between consecutive delta events of one generation (coalesced frames, not tokens)',
    buckets: [0.005, 0.01, 0.025, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly aiGenerations = new Counter({
    name: 'ai_generations_total',
    help: 'Generations ended, by outcome (completed, failed, cancelled, interrupted = found orphaned after a restart; handed_over at a clean stop, continued by the next start)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly tasks = new Counter({
    name: 'tasks_total',
    help: 'Tasks ended, by kind and outcome (completed, failed, cancelled, interrupted = found orphaned after a restart; handed_over at a clean stop, continued by the next start)',
    labelNames: ['kind', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly dependencyBreakerState = new Gauge({
    name: 'dependency_breaker_state',
    help: 'Circuit breaker of each dependency: 0 closed, 1 half-open (one trial call), 2 open (failing fast)',
    labelNames: ['dependency'] as const,
    registers: [this.registry],
  });
  readonly busLocalPublishes = new Counter({
    name: 'bus_local_publishes_total',
    help: 'Events delivered to this instance only because Redis was unreachable (local fallback)',
    registers: [this.registry],
  });
  readonly busLiveGaps = new Counter({
    name: 'bus_live_gaps_total',
    help: 'Topics whose live stream could not be stitched after a Redis outage (their streams were asked to resume)',
    registers: [this.registry],
  });

  /** Set by the health routes; read at every scrape, so the gauges below never go stale. */
  private readinessSource: (() => Promise<ReadinessReport>) | undefined;
  readonly readiness = new Gauge({
    name: 'readiness_state',
    help: 'What /readyz answers: 0 ok, 1 degraded (serving, a dependency impaired), 2 unavailable (503)',
    registers: [this.registry],
    collect: async () => {
      const report = await this.readReadiness();
      if (report) this.readiness.set(READINESS_VALUE[report.status]);
    },
  });
  readonly componentHealth = new Gauge({
    name: 'readiness_component_state',
    help: 'Health of the bus and the store as /readyz sees them: 0 up, 1 degraded, 2 down',
    labelNames: ['component'] as const,
    registers: [this.registry],
    collect: async () => {
      const report = await this.readReadiness();
      if (!report) return;
      for (const component of ['bus', 'store'] as const) {
        this.componentHealth.set({ component }, HEALTH_VALUE[report[component].status]);
      }
    },
  });
  /** One health check per scrape: both gauges collect at once and share it. */
  private pendingReadiness: Promise<ReadinessReport | undefined> | undefined;

  /** Mirrors a breaker's state into dependency_breaker_state; pass as the breaker's `onStateChange`. */
  readonly observeBreaker = (state: BreakerState, dependency: string): void => {
    this.dependencyBreakerState.set({ dependency }, BREAKER_STATE_VALUE[state]);
  };

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** Makes readiness_state and readiness_component_state report `source` at every scrape. */
  setReadinessSource(source: () => Promise<ReadinessReport>): void {
    this.readinessSource = source;
  }

  private readReadiness(): Promise<ReadinessReport | undefined> {
    this.pendingReadiness ??= (this.readinessSource?.() ?? Promise.resolve(undefined)).finally(() => {
      this.pendingReadiness = undefined;
    });
    return this.pendingReadiness;
  }
}
