/**
 * @module Turns successive `/metrics` scrapes into chart points: active connections (a gauge),
 * deliveries per second (rate of a counter), delivery latency p99 over the interval (from
 * histogram bucket increases, like PromQL `histogram_quantile(0.99, rate(…))`), and stream resets
 * in the interval. Counters that go down mean the server restarted: the new value is the increase.
 */
import { bucketsOf, sumOf, type Sample } from './prometheus.js';

/** What one scrape says, reduced to what the charts need. */
export interface MetricsScrape {
  /** When it was taken (epoch ms). */
  at: number;
  connectionsActive: number | undefined;
  deliveredTotal: number | undefined;
  resetsTotal: number | undefined;
  latencyBuckets: { le: number; count: number }[];
}

/** One point of every chart. `null` means "no data" (a gap in the line). */
export interface MetricsPoint {
  /** Epoch seconds (uPlot's x unit). */
  time: number;
  connections: number | null;
  deliveriesPerSecond: number | null;
  latencyP99Ms: number | null;
  resets: number | null;
}

/** Reduces parsed samples to a {@link MetricsScrape}. */
export function toScrape(samples: readonly Sample[], at: number): MetricsScrape {
  return {
    at,
    connectionsActive: sumOf(samples, 'sse_connections_active'),
    deliveredTotal: sumOf(samples, 'sse_events_delivered_total'),
    // A counter with labels has no sample until a first reset; then none means zero.
    resetsTotal: sumOf(samples, 'sse_stream_resets_total') ?? 0,
    latencyBuckets: bucketsOf(samples, 'sse_event_delivery_latency_seconds'),
  };
}

/** The chart point for `next`, using `previous` (the scrape before it) for rates. */
export function toPoint(previous: MetricsScrape | undefined, next: MetricsScrape): MetricsPoint {
  const seconds = previous ? (next.at - previous.at) / 1000 : 0;
  const delivered = increase(previous?.deliveredTotal, next.deliveredTotal);
  const p99 = previous ? histogramQuantile(0.99, bucketIncreases(previous.latencyBuckets, next.latencyBuckets)) : null;
  return {
    time: next.at / 1000,
    connections: next.connectionsActive ?? null,
    deliveriesPerSecond: delivered !== null && seconds > 0 ? delivered / seconds : null,
    latencyP99Ms: p99 === null ? null : p99 * 1000,
    resets: increase(previous?.resetsTotal, next.resetsTotal),
  };
}

function increase(previous: number | undefined, next: number | undefined): number | null {
  if (previous === undefined || next === undefined) return null;
  return next >= previous ? next - previous : next;
}

function bucketIncreases(
  previous: readonly { le: number; count: number }[],
  next: readonly { le: number; count: number }[],
): { le: number; count: number }[] {
  const before = new Map(previous.map((bucket) => [bucket.le, bucket.count]));
  const restarted = next.some((bucket) => bucket.count < (before.get(bucket.le) ?? 0));
  return next.map((bucket) => ({
    le: bucket.le,
    count: restarted ? bucket.count : bucket.count - (before.get(bucket.le) ?? 0),
  }));
}

/**
 * The `q` quantile of cumulative buckets, interpolating linearly inside the bucket (as Prometheus
 * does); null when there were no observations. A quantile in the `+Inf` bucket is reported as the
 * largest finite bound.
 * @example histogramQuantile(0.5, [{ le: 1, count: 0 }, { le: 2, count: 10 }, { le: Infinity, count: 10 }]) === 1.5
 */
export function histogramQuantile(q: number, buckets: readonly { le: number; count: number }[]): number | null {
  const total = buckets.at(-1)?.count ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const bucket of buckets) {
    if (bucket.count >= rank) {
      if (!Number.isFinite(bucket.le)) return lowerBound;
      const inBucket = bucket.count - lowerCount;
      return inBucket <= 0 ? bucket.le : lowerBound + ((bucket.le - lowerBound) * (rank - lowerCount)) / inBucket;
    }
    lowerBound = bucket.le;
    lowerCount = bucket.count;
  }
  return lowerBound;
}
