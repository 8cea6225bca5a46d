import { useEffect, useMemo, useState } from 'react';
import { LiveChart } from '../components/live-chart.js';
import { toPoint, toScrape, type MetricsPoint, type MetricsScrape } from '../lib/metrics-series.js';
import { parsePrometheusText } from '../lib/prometheus.js';

const POLL_MS = 2_000;
/** Five minutes of points. */
const MAX_POINTS = 150;

/**
 * Live charts of the server's own metrics (`GET /metrics`, polled every 2 s): active connections,
 * deliveries per second, delivery latency p99, and stream resets. The numbers are those of the
 * instance that answers (behind a load balancer, whichever one that is).
 */
export function OperationsPage() {
  const [points, setPoints] = useState<MetricsPoint[]>([]);
  const [problem, setProblem] = useState<string | null>(null);
  const [readiness, setReadiness] = useState<string>('checking…');

  useEffect(() => {
    const controller = new AbortController();
    let previous: MetricsScrape | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async () => {
      try {
        // A hidden tab skips its polls; the chart shows the gap honestly.
        if (!document.hidden) {
          const [metrics, ready] = await Promise.all([
            fetch('/metrics', { signal: controller.signal, headers: { accept: 'text/plain' } }),
            fetch('/readyz', { signal: controller.signal }).catch(() => undefined),
          ]);
          setReadiness(ready ? await readinessOf(ready) : 'unreachable');
          if (metrics.status === 401 || metrics.status === 403) {
            setProblem('The server protects /metrics with METRICS_TOKEN; this page cannot read it.');
          } else if (!metrics.ok) {
            setProblem(`/metrics answered HTTP ${metrics.status}.`);
          } else {
            const scrape = toScrape(parsePrometheusText(await metrics.text()), Date.now());
            const point = toPoint(previous, scrape);
            previous = scrape;
            setPoints((list) => [...list, point].slice(-MAX_POINTS));
            setProblem(null);
          }
        }
      } catch {
        if (controller.signal.aborted) return;
        setProblem('The server is unreachable; retrying every 2 s.');
        setReadiness('unreachable');
      }
      if (!controller.signal.aborted) timer = setTimeout(() => void poll(), POLL_MS);
    };
    void poll();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, []);

  const series = useMemo(
    () => ({
      times: points.map((point) => point.time),
      connections: points.map((point) => point.connections),
      deliveries: points.map((point) => point.deliveriesPerSecond),
      latency: points.map((point) => point.latencyP99Ms),
      resets: points.map((point) => point.resets),
    }),
    [points],
  );

  return (
    <div className="operations-page">
      <div className="card">
        <h2>Operations</h2>
        <p className="muted">
          Live from <code>/metrics</code> every 2 seconds · readiness:{' '}
          <strong data-testid="readiness">{readiness}</strong>
        </p>
        {problem && (
          <p className="form-error" role="alert">
            {problem}
          </p>
        )}
      </div>
      <div className="charts">
        <LiveChart
          title="Open connections"
          unit=""
          times={series.times}
          values={series.connections}
          color="#2563eb"
          testId="chart-connections"
        />
        <LiveChart
          title="Deliveries per second"
          unit="/s"
          times={series.times}
          values={series.deliveries}
          color="#16a34a"
          digits={1}
          testId="chart-deliveries"
        />
        <LiveChart
          title="Delivery latency p99"
          unit="ms"
          times={series.times}
          values={series.latency}
          color="#d97706"
          digits={1}
          testId="chart-latency"
        />
        <LiveChart
          title="Stream resets (per 2 s)"
          unit=""
          times={series.times}
          values={series.resets}
          color="#dc2626"
          testId="chart-resets"
        />
      </div>
    </div>
  );
}

async function readinessOf(response: Response): Promise<string> {
  const body: unknown = await response.json().catch(() => undefined);
  const status = typeof body === 'object' && body !== null && 'status' in body ? String(body.status) : undefined;
  return status ?? (response.ok ? 'ok' : `HTTP ${response.status}`);
}
