/**
 * @module A parser for the Prometheus text exposition format (what `GET /metrics` returns), enough
 * for the operations page: samples with labels and values; `# HELP`/`# TYPE` lines are skipped.
 */

/** One sample line: `name{label="value",…} value`. */
export interface Sample {
  name: string;
  labels: Readonly<Record<string, string>>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/;

/**
 * Parses exposition text; malformed lines are skipped rather than failing the whole scrape.
 * @example parsePrometheusText('sse_connections_active 3') // [{ name: 'sse_connections_active', labels: {}, value: 3 }]
 */
export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = SAMPLE.exec(line);
    if (!match) continue;
    const [, name = '', labelText, valueText = ''] = match;
    const labels = labelText ? parseLabels(labelText) : {};
    const value = parseValue(valueText);
    if (labels && !Number.isNaN(value)) samples.push({ name, labels, value });
  }
  return samples;
}

function parseValue(text: string): number {
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(text);
}

/** `a="x",b="y \"quoted\""` → `{a: 'x', b: 'y "quoted"'}`; null when malformed. */
function parseLabels(text: string): Record<string, string> | null {
  const labels: Record<string, string> = {};
  let index = 0;
  while (index < text.length) {
    const nameMatch = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"/.exec(text.slice(index));
    if (!nameMatch) return text.slice(index).trim() === '' ? labels : null;
    index += nameMatch[0].length;
    let value = '';
    for (;;) {
      const char = text[index];
      if (char === undefined) return null;
      index++;
      if (char === '"') break;
      if (char === '\\') {
        const next = text[index++];
        value += next === 'n' ? '\n' : (next ?? '');
      } else {
        value += char;
      }
    }
    labels[nameMatch[1] ?? ''] = value;
    const rest = /^\s*,?/.exec(text.slice(index));
    index += rest ? rest[0].length : 0;
  }
  return labels;
}

/** Sum of the samples named `name` (over all label sets); undefined when there are none. */
export function sumOf(samples: readonly Sample[], name: string): number | undefined {
  let total: number | undefined;
  for (const sample of samples) if (sample.name === name) total = (total ?? 0) + sample.value;
  return total;
}

/** Cumulative histogram buckets of `name` (`name_bucket{le}`), summed over other labels, sorted by `le`. */
export function bucketsOf(samples: readonly Sample[], name: string): { le: number; count: number }[] {
  const byLe = new Map<number, number>();
  for (const sample of samples) {
    if (sample.name !== `${name}_bucket`) continue;
    const le = parseValue(sample.labels.le ?? '');
    if (Number.isNaN(le)) continue;
    byLe.set(le, (byLe.get(le) ?? 0) + sample.value);
  }
  return [...byLe].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
}
