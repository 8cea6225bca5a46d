import { describe, expect, it } from 'vitest';
import { bucketsOf, parsePrometheusText, sumOf } from './prometheus.js';

const TEXT = `# HELP sse_connections_active Open SSE streams on this instance
# TYPE sse_connections_active gauge
sse_connections_active 3
# TYPE sse_stream_resets_total counter
sse_stream_resets_total{reason="gap"} 2
sse_stream_resets_total{reason="unknown_id"} 5
sse_event_delivery_latency_seconds_bucket{le="0.005"} 10
sse_event_delivery_latency_seconds_bucket{le="0.01"} 15
sse_event_delivery_latency_seconds_bucket{le="+Inf"} 16
sse_event_delivery_latency_seconds_sum 0.1
weird_metric{path="/a \\"b\\", c\\\\d",code="200"} 1.5e3 1700000000000
broken line here
nan_metric NaN
`;

describe('parsePrometheusText', () => {
  it('reads samples with labels, escapes, exponents and timestamps; skips comments and junk', () => {
    const samples = parsePrometheusText(TEXT);
    expect(samples.find((sample) => sample.name === 'sse_connections_active')?.value).toBe(3);
    expect(samples.find((sample) => sample.name === 'weird_metric')).toEqual({
      name: 'weird_metric',
      labels: { path: '/a "b", c\\d', code: '200' },
      value: 1500,
    });
    expect(samples.some((sample) => sample.name === 'broken')).toBe(false);
    expect(samples.some((sample) => sample.name === 'nan_metric')).toBe(false);
  });

  it('sums over label sets and collects buckets in order', () => {
    const samples = parsePrometheusText(TEXT);
    expect(sumOf(samples, 'sse_stream_resets_total')).toBe(7);
    expect(sumOf(samples, 'missing')).toBeUndefined();
    expect(bucketsOf(samples, 'sse_event_delivery_latency_seconds')).toEqual([
      { le: 0.005, count: 10 },
      { le: 0.01, count: 15 },
      { le: Number.POSITIVE_INFINITY, count: 16 },
    ]);
  });
});
