import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { PgliteEventStore } from '../src/adapters/store/pglite-event-store.js';
import { parseExposition, promqlReferences, PROMQL_FUNCTIONS, seriesOf, type MetricFamily } from './helpers/promql.js';
import { openStream } from './helpers/sse-reader.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

const ROOT = new URL('../../../', import.meta.url);
const DASHBOARD = new URL('deploy/monitoring/grafana-dashboard.json', ROOT);
const RULES = new URL('deploy/monitoring/alert-rules.yml', ROOT);
const RUNBOOK = new URL('docs/runbook.md', ROOT);
const PROMETHEUS = new URL('deploy/monitoring/prometheus.yml', ROOT);

/** Series Prometheus adds itself, not the server. */
const SCRAPE_SERIES = new Set(['up']);
/** Labels Prometheus attaches to every scraped series, and the histogram bucket label. */
const TARGET_LABELS = new Set(['instance', 'job', 'le']);

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: { refId: string; expr: string; datasource?: { uid: string } }[];
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown; definition?: string }[] };
}
interface AlertRule {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

async function loadDashboard(): Promise<Dashboard> {
  return JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard;
}

async function loadRules(): Promise<{ groups: { name: string; rules: AlertRule[] }[] }> {
  return parseYaml(await readFile(RULES, 'utf8')) as { groups: { name: string; rules: AlertRule[] }[] };
}

/** Every PromQL expression of the dashboard and the rules, with where it comes from. */
async function expressions(): Promise<{ where: string; expr: string }[]> {
  const dashboard = await loadDashboard();
  const fromPanels = dashboard.panels.flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({ where: `panel "${panel.title}" ${target.refId}`, expr: target.expr })),
  );
  const fromVariables = dashboard.templating.list
    .filter((variable) => variable.type === 'query')
    .map((variable) => {
      const query = typeof variable.query === 'string' ? variable.query : (variable.query as { query: string }).query;
      // Grafana's label_values(series, label) names a series like a selector does.
      const series = /^label_values\((.+),\s*[A-Za-z_]+\)$/.exec(query)?.[1];
      if (series === undefined) throw new Error(`variable ${variable.name}: unexpected query ${query}`);
      return { where: `variable ${variable.name}`, expr: series };
    });
  const fromRules = (await loadRules()).groups.flatMap((group) =>
    group.rules.map((rule) => ({ where: `alert ${rule.alert}`, expr: rule.expr })),
  );
  return [...fromPanels, ...fromVariables, ...fromRules];
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
function anchorsOf(markdown: string): Set<string> {
  return new Set(
    [...markdown.matchAll(/^#{1,6} (.+)$/gm)].map((match) =>
      (match[1] ?? '')
        .trim()
        .toLowerCase()
        .replace(/[^a-z0-9 _-]/g, '')
        .replace(/ /g, '-'),
    ),
  );
}

describe('monitoring: the dashboard and the alert rules query metrics the server exposes', () => {
  let server: TestApp;
  let families: Map<string, MetricFamily>;
  /** Label names each metric declares (a labelled metric without samples yet shows none in /metrics). */
  let declaredLabels: Map<string, string[]>;

  beforeAll(async () => {
    server = await startTestApp({ AI_OFFLINE_TOKENS_PER_SECOND: '5000' });
    // A little of everything, so histograms and labelled counters have series.
    const token = await server.token('monitor', { scope: 'events:publish' });
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const stream = await openStream(server.url, { token });
    const reset = await openStream(server.url, { token, lastEventId: 'not-an-id' });
    await server.publish({ topic: 'user:monitor' });
    const generation = await fetch(`${server.url}/api/ai/generations`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ prompt: 'Monitoring', maxTokens: 20 }),
    });
    const { generationId } = (await generation.json()) as { generationId: string };
    const task = await fetch(`${server.url}/api/tasks`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ kind: 'demo', input: { stages: 1, stageMs: 10 } }),
    });
    const { taskId } = (await task.json()) as { taskId: string };
    await stream.waitFor((events) =>
      [`"${generationId}"`, `"${taskId}"`].every((id) =>
        events.some((event) => event.event?.endsWith('.completed') && event.data.includes(id)),
      ),
    );
    await fetch(`${server.url}/api/sse/stream`);
    stream.close();
    reset.close();
    await stream.ended;
    families = parseExposition(await (await fetch(`${server.url}/metrics`)).text());
    declaredLabels = new Map(
      server.app.realtime.internals.metrics.registry
        .getMetricsAsArray()
        // prom-client keeps the declared label names on the metric; its types do not show them.
        .map((metric) => [metric.name, (metric as { labelNames?: string[] }).labelNames ?? []]),
    );
  });
  afterAll(async () => {
    await server?.close();
  });

  it('has series for the histograms and labelled counters the panels chart', () => {
    for (const name of ['sse_event_delivery_latency_seconds', 'ai_generation_time_to_first_token_seconds']) {
      expect(families.get(name)?.type, name).toBe('histogram');
    }
    expect(families.get('sse_disconnects_total')?.labels).toContain('reason');
    expect(families.get('ai_generations_total')?.labels).toContain('outcome');
    expect(families.get('readiness_state')?.type).toBe('gauge');
  });

  it('every series, label and function of every expression exists', async () => {
    const available = new Map<string, string>();
    for (const [name, family] of families) for (const series of seriesOf(name, family)) available.set(series, name);
    const all = await expressions();
    expect(all.length).toBeGreaterThan(30);
    const problems: string[] = [];
    for (const { where, expr } of all) {
      const references = promqlReferences(expr);
      if (references.series.length === 0) problems.push(`${where}: no series in ${expr}`);
      for (const series of references.series) {
        if (!available.has(series) && !SCRAPE_SERIES.has(series)) problems.push(`${where}: no series ${series}`);
      }
      for (const name of references.functions) {
        if (!PROMQL_FUNCTIONS.has(name)) problems.push(`${where}: unknown function ${name}`);
      }
      for (const { metric, labels } of references.selectors) {
        const family = metric === undefined ? undefined : available.get(metric);
        if (family === undefined) continue;
        const known = new Set([...(declaredLabels.get(family) ?? []), ...(families.get(family)?.labels ?? [])]);
        for (const label of labels) {
          if (!known.has(label) && !TARGET_LABELS.has(label))
            problems.push(`${where}: ${metric} has no label ${label}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('the reader itself tells series from functions, labels and durations', () => {
    expect(
      promqlReferences(
        'histogram_quantile(0.99, sum by (le, instance) (rate(x_bucket{instance=~"$instance", a="}"}[$__rate_interval]))) > 1e3',
      ),
    ).toEqual({
      series: ['x_bucket'],
      selectors: [{ metric: 'x_bucket', labels: ['instance', 'a'] }],
      functions: ['histogram_quantile', 'sum', 'rate'],
    });
    expect(promqlReferences('up == 0 or max without (job) (y) / clamp_min(z, 1)').series).toEqual(['up', 'y', 'z']);
    expect(() => promqlReferences('rate(x[5m]')).toThrow(/unclosed/);
  });

  it('the dashboard is a well-formed Grafana dashboard', async () => {
    const dashboard = await loadDashboard();
    expect(dashboard).toMatchObject({ uid: 'infinitescribe-realtime', title: expect.any(String) });
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.templating.list.find((variable) => variable.name === 'datasource')).toMatchObject({
      type: 'datasource',
      query: 'prometheus',
    });
    const ids = dashboard.panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of dashboard.panels) {
      const { h, w, x, y } = panel.gridPos;
      expect([h, w, x, y].every(Number.isInteger), panel.title).toBe(true);
      expect(x + w, panel.title).toBeLessThanOrEqual(24);
      if (panel.type === 'row') continue;
      expect(panel.datasource, panel.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      const targets = panel.targets ?? [];
      expect(targets.length, panel.title).toBeGreaterThan(0);
      expect(new Set(targets.map((target) => target.refId)).size, panel.title).toBe(targets.length);
    }
    const titles = dashboard.panels.map((panel) => panel.title.toLowerCase()).join('\n');
    for (const topic of [
      'open streams',
      'deliveries',
      'delivery latency',
      'resets',
      'readiness',
      'first token',
      'slow-consumer',
      'breakers',
    ]) {
      expect(titles).toContain(topic);
    }
  });

  it('the alert rules are a well-formed Prometheus rules file whose runbook links resolve', async () => {
    const rules = await loadRules();
    const anchors = anchorsOf(await readFile(RUNBOOK, 'utf8'));
    expect(Object.keys(rules)).toEqual(['groups']);
    const groupNames = rules.groups.map((group) => group.name);
    expect(new Set(groupNames).size).toBe(groupNames.length);
    const alerts: string[] = [];
    for (const group of rules.groups) {
      expect(Object.keys(group).sort()).toEqual(['name', 'rules']);
      expect(group.rules.length).toBeGreaterThan(0);
      for (const rule of group.rules) {
        alerts.push(rule.alert);
        expect(Object.keys(rule).sort(), rule.alert).toEqual(['alert', 'annotations', 'expr', 'for', 'labels']);
        expect(rule.alert).toMatch(/^InfiniteScribe[A-Z][A-Za-z0-9]+$/);
        expect(typeof rule.expr, rule.alert).toBe('string');
        expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/);
        expect(['critical', 'warning'], rule.alert).toContain(rule.labels['severity']);
        expect(rule.annotations, rule.alert).toMatchObject({
          summary: expect.any(String),
          description: expect.any(String),
          runbook_url: expect.stringMatching(/^docs\/runbook\.md#[a-z0-9-]+$/),
        });
        const anchor = (rule.annotations['runbook_url'] ?? '').split('#')[1] ?? '';
        expect(anchors, `${rule.alert} → #${anchor}`).toContain(anchor);
        // A label an annotation prints must survive the expression's aggregation (`by (...)`).
        const aggregated = /\b(?:sum|min|max|avg|count|group|topk|bottomk|quantile)\b/.test(rule.expr);
        for (const match of Object.values(rule.annotations)
          .join(' ')
          .matchAll(/\$labels\.([A-Za-z_]+)/g)) {
          const kept = new RegExp(`\\bby \\([^)]*\\b${match[1]}\\b`);
          if (aggregated) expect(rule.expr, `${rule.alert} prints ${match[1]}`).toMatch(kept);
        }
      }
    }
    expect(new Set(alerts).size).toBe(alerts.length);
  });
});

describe('monitoring: the Prometheus configuration', () => {
  it('scrapes the job the rules name and loads the rules file beside it', async () => {
    const config = parseYaml(await readFile(PROMETHEUS, 'utf8')) as {
      rule_files: string[];
      scrape_configs: { job_name: string; metrics_path: string; static_configs: { targets: string[] }[] }[];
    };
    expect(config.rule_files).toEqual(['alert-rules.yml']);
    const jobs = config.scrape_configs.map((scrape) => scrape.job_name);
    const rules = await readFile(RULES, 'utf8');
    for (const job of rules.matchAll(/job="([^"]+)"/g)) expect(jobs).toContain(job[1]);
    for (const scrape of config.scrape_configs) {
      expect(scrape.metrics_path).toBe('/metrics');
      expect(scrape.static_configs.flatMap((target) => target.targets).length).toBeGreaterThan(0);
    }
  });
});

describe('monitoring: readiness metrics follow /readyz', () => {
  it('reports a store that is down as degraded, like /readyz', async () => {
    class DownStore extends PgliteEventStore {
      override async health(): Promise<{ status: 'down'; detail: string }> {
        return { status: 'down', detail: 'test: store down' };
      }
    }
    const server = await startTestApp({}, { store: new DownStore() });
    try {
      const readyz = (await (await fetch(`${server.url}/readyz`)).json()) as { status: string };
      expect(readyz.status).toBe('degraded');
      const text = await (await fetch(`${server.url}/metrics`)).text();
      expect(text).toMatch(/^readiness_state 1$/m);
      expect(text).toMatch(/^readiness_component_state\{component="store"\} 2$/m);
      expect(text).toMatch(/^readiness_component_state\{component="bus"\} 0$/m);
    } finally {
      await server.close();
    }
  });
});
