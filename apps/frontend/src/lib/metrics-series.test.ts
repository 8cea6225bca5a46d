import { describe, expect, it } from 'vitest';
import { histogramQuantile, toPoint, toScrape, type MetricsScrape } from './metrics-series.js';
import { parsePrometheusText } from './prometheus.js';

function scrape(at: number, delivered: number, buckets: [number, number, number], resets = 0): MetricsScrape {
  const [fast, slow, all] = buckets;
  const text = [
    'sse_connections_active 4',
    `sse_events_delivered_total ${delivered}`,
    `sse_stream_resets_total{reason="gap"} ${resets}`,
    `sse_event_delivery_latency_seconds_bucket{le="0.01"} ${fast}`,
    `sse_event_delivery_latency_seconds_bucket{le="0.1"} ${slow}`,
    `sse_event_delivery_latency_seconds_bucket{le="+Inf"} ${all}`,
  ].join('\n');
  return toScrape(parsePrometheusText(text), at);
}

describe('metrics series', () => {
  it('gives the gauge at once and rates from the second scrape on', () => {
    const first = scrape(10_000, 100, [0, 0, 0]);
    expect(toPoint(undefined, first)).toEqual({
      time: 10,
      connections: 4,
      deliveriesPerSecond: null,
      latencyP99Ms: null,
      resets: null,
    });
    const second = scrape(12_000, 300, [90, 100, 100], 2);
    const point = toPoint(first, second);
    expect(point.deliveriesPerSecond).toBe(100);
    expect(point.resets).toBe(2);
    // 99th of 100 observations: 9 into the 10 between 10 ms and 100 ms → 91 ms.
    expect(point.latencyP99Ms).toBeCloseTo(91, 5);
  });

  it('treats a counter that went down as a restart', () => {
    const before = scrape(0, 5_000, [10, 10, 10], 9);
    const after = scrape(2_000, 40, [4, 4, 4], 1);
    expect(toPoint(before, after)).toMatchObject({ deliveriesPerSecond: 20, resets: 1 });
    expect(toPoint(before, after).latencyP99Ms).toBeCloseTo(9.9, 5);
  });

  it('has no p99 when nothing was delivered in the interval', () => {
    const a = scrape(0, 10, [5, 5, 5]);
    const b = scrape(2_000, 10, [5, 5, 5]);
    expect(toPoint(a, b)).toMatchObject({ deliveriesPerSecond: 0, latencyP99Ms: null });
  });

  it('histogramQuantile interpolates and caps at the largest finite bound', () => {
    const buckets = [
      { le: 1, count: 0 },
      { le: 2, count: 10 },
      { le: Number.POSITIVE_INFINITY, count: 10 },
    ];
    expect(histogramQuantile(0.5, buckets)).toBe(1.5);
    expect(
      histogramQuantile(0.99, [
        { le: 1, count: 1 },
        { le: Number.POSITIVE_INFINITY, count: 100 },
      ]),
    ).toBe(1);
    expect(histogramQuantile(0.99, [])).toBeNull();
  });
});
