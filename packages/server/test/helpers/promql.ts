/**
 * Just enough PromQL reading to check a dashboard or a rules file against a server's /metrics:
 * which series, labels and functions an expression uses. Not a full parser: it relies on
 * selectors being the only place `{}` appears and ranges the only place `[]` appears, which holds
 * in PromQL (Grafana's `{{label}}` legends are not expressions).
 */

/** A series selector: `name{label="value", ...}` (name may be absent: `{__name__=~"..."}`). */
export interface Selector {
  metric: string | undefined;
  labels: string[];
}

/** What an expression refers to. */
export interface PromqlReferences {
  /** Series names, bare or in selectors: `sse_connections_active`, `x_bucket`. */
  series: string[];
  selectors: Selector[];
  /** Functions and aggregations called: `rate`, `sum`, `histogram_quantile`. */
  functions: string[];
}

/** Aggregation operators: may be followed by `by (...)`/`without (...)` before their `(`. */
const AGGREGATIONS = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'group',
  'stddev',
  'stdvar',
  'count',
  'count_values',
  'bottomk',
  'topk',
  'quantile',
  'limitk',
  'limit_ratio',
]);
const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
]);
const LITERALS = new Set(['inf', 'nan', 'Inf', 'NaN']);

/** PromQL functions (Prometheus 2.x/3.x), so a misspelt one fails instead of being read as a series. */
export const PROMQL_FUNCTIONS = new Set([
  ...AGGREGATIONS,
  'abs',
  'absent',
  'absent_over_time',
  'avg_over_time',
  'ceil',
  'changes',
  'clamp',
  'clamp_max',
  'clamp_min',
  'count_over_time',
  'day_of_month',
  'day_of_week',
  'delta',
  'deriv',
  'exp',
  'floor',
  'histogram_quantile',
  'holt_winters',
  'hour',
  'idelta',
  'increase',
  'irate',
  'label_join',
  'label_replace',
  'last_over_time',
  'ln',
  'log10',
  'log2',
  'max_over_time',
  'min_over_time',
  'minute',
  'month',
  'predict_linear',
  'present_over_time',
  'quantile_over_time',
  'rate',
  'resets',
  'round',
  'scalar',
  'sgn',
  'sort',
  'sort_desc',
  'sqrt',
  'stddev_over_time',
  'stdvar_over_time',
  'sum_over_time',
  'time',
  'timestamp',
  'vector',
  'year',
]);

/**
 * The series, selectors and functions of `expression`. Grafana variables (`$instance`,
 * `$__rate_interval`, `${datasource}`) are allowed where PromQL takes a string or a duration.
 * @throws Error when parentheses, braces or brackets do not balance.
 */
export function promqlReferences(expression: string): PromqlReferences {
  assertBalanced(expression);
  const selectors: Selector[] = [];
  const series: string[] = [];
  const functions: string[] = [];
  // Selectors first (their label values may hold anything), then ranges, then durations after offset.
  let rest = expression.replace(
    /([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{((?:[^}"]|"(?:[^"\\]|\\.)*")*)\}/g,
    (_match, metric: string | undefined, matchers: string) => {
      const labels = [...matchers.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"/g)].map(
        (match) => match[1] ?? '',
      );
      selectors.push({ metric, labels });
      if (metric !== undefined) series.push(metric);
      return ' __selector__ ';
    },
  );
  rest = rest
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\boffset\s+\S+/g, ' ')
    .replace(/"(?:[^"\\]|\\.)*"/g, ' ');
  rest = rest.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const tokens = [...rest.matchAll(/(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|([A-Za-z_:][A-Za-z0-9_:]*)|(\S)/g)];
  tokens.forEach((token, index) => {
    const name = token[2];
    if (name === undefined || name === '__selector__') return;
    const next = tokens.slice(index + 1).find((candidate) => candidate[2] !== undefined || candidate[3] !== undefined);
    if (next?.[3] === '(' || (AGGREGATIONS.has(name) && next?.[2] !== undefined)) functions.push(name);
    else if (!KEYWORDS.has(name) && !LITERALS.has(name)) series.push(name);
  });
  return { series, selectors, functions };
}

function assertBalanced(expression: string): void {
  const closing: Record<string, string> = { ')': '(', '}': '{', ']': '[' };
  const open: string[] = [];
  for (const character of expression.replace(/"(?:[^"\\]|\\.)*"/g, '""')) {
    if ('({['.includes(character)) open.push(character);
    else if (character in closing && open.pop() !== closing[character]) {
      throw new Error(`unbalanced "${character}" in ${expression}`);
    }
  }
  if (open.length > 0) throw new Error(`unclosed "${open.join('')}" in ${expression}`);
}

/** A metric family of a Prometheus text exposition. */
export interface MetricFamily {
  type: string;
  /** Label names seen on its samples (`le`/`quantile` included). */
  labels: Set<string>;
}

/** Families by name, from `# TYPE` lines and samples, so families without samples yet count too. */
export function parseExposition(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type?.[1] && type[2]) families.set(type[1], { type: type[2], labels: new Set() });
  }
  for (const line of text.split('\n')) {
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{([^}]*)\})? /.exec(line);
    if (!sample?.[1]) continue;
    const family = families.get(sample[1]) ?? families.get(sample[1].replace(/_(?:bucket|sum|count)$/, ''));
    for (const match of (sample[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="/g)) family?.labels.add(match[1] ?? '');
  }
  return families;
}

/** The series names a family exposes: a histogram only `_bucket`, `_sum` and `_count`. */
export function seriesOf(name: string, family: MetricFamily): string[] {
  if (family.type === 'histogram') return [`${name}_bucket`, `${name}_sum`, `${name}_count`];
  if (family.type === 'summary') return [name, `${name}_sum`, `${name}_count`];
  return [name];
}
