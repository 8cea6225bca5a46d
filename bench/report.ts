import type { LatencySummary } from './histogram.js';
import {
  type ConnectResult,
  type DeliveryResult,
  fmtInt,
  fmtMs,
  fmtPct,
  type MemoryResult,
  type Plan,
  type ServerKind,
  stepOk,
  THROUGHPUT_P99_LIMIT_MS,
} from './phases.js';

/** Everything measured on one server. */
export interface ServerResult {
  kind: ServerKind;
  label: string;
  memory: MemoryResult;
  connect: ConnectResult;
  broadcast: DeliveryResult;
  steps: DeliveryResult[];
  /** Highest deliveries/s of a step with p99 ≤ 100 ms and nothing lost. */
  fanout: number;
}

export function fanoutThroughput(steps: readonly DeliveryResult[]): number {
  return Math.max(0, ...steps.filter(stepOk).map((step) => step.deliveriesPerSec));
}

function fmtRatio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : 'n/a';
}

export const verdict = (pass: boolean) => (pass ? 'PASS' : '**FAIL**');

/** One row of a scenario's verdict table: name, measured value, target, pass (`undefined`: info only). */
export type VerdictRow = [name: string, value: string, target: string, pass: boolean | undefined];

/** A scenario's verdict table (`valueHeader` names the measured column) and how many judged rows pass. */
export function verdictTable(
  valueHeader: string,
  rows: readonly VerdictRow[],
): { table: string; passed: number; judged: number } {
  return sideBySideVerdictTable(
    [valueHeader],
    rows.map(([name, value, target, pass]) => [name, [value], target, [pass]]),
  );
}

/** A row of {@link sideBySideVerdictTable}: one value and one verdict per measured column. */
export type SideBySideRow = [name: string, values: string[], target: string, pass: (boolean | undefined)[]];

/**
 * A verdict table with several measured columns (the same load on each), a Result per column, and
 * how many judged cells pass.
 */
export function sideBySideVerdictTable(
  valueHeaders: readonly string[],
  rows: readonly SideBySideRow[],
): { table: string; passed: number; judged: number } {
  const results = valueHeaders.length === 1 ? ['Result'] : valueHeaders.map((header) => `Result (${header})`);
  const table = [
    `| Metric | ${valueHeaders.join(' | ')} | Target | ${results.join(' | ')} |`,
    `| --- | ${valueHeaders.map(() => '---:').join(' | ')} | --- | ${results.map(() => '---').join(' | ')} |`,
    ...rows.map(
      ([name, values, target, passes]) =>
        `| ${name} | ${values.join(' | ')} | ${target} | ${passes
          .map((pass) => (pass === undefined ? 'info' : verdict(pass)))
          .join(' | ')} |`,
    ),
  ].join('\n');
  const judged = rows.flatMap((row) => row[3]).filter((pass) => pass !== undefined);
  return { table, passed: judged.filter((pass) => pass).length, judged: judged.length };
}

/** The acceptance table: both servers side by side, the ratio and the target per row. */
export function mainTable(
  plan: Plan,
  ours: ServerResult,
  minimal: ServerResult,
): { table: string; passed: number; rows: number } {
  const rssRatio = ours.memory.perStreamKiB / minimal.memory.perStreamKiB;
  const latencyRatio = ours.broadcast.latency.p99 / minimal.broadcast.latency.p99;
  const fanoutRatio = ours.fanout / minimal.fanout;
  const lat = (summary: LatencySummary) => `${fmtMs(summary.p50)} / ${fmtMs(summary.p99)} / ${fmtMs(summary.max)}`;
  const rows: [string, string, string, string, string, boolean][] = [
    [
      `Streams held in one process (authenticated, of ${fmtInt(plan.connections)})`,
      fmtInt(ours.memory.held),
      fmtInt(minimal.memory.held),
      '',
      `all ${fmtInt(plan.connections)}`,
      ours.memory.held === plan.connections,
    ],
    [
      'RSS per stream, KiB (ΔRSS / streams)',
      ours.memory.perStreamKiB.toFixed(1),
      minimal.memory.perStreamKiB.toFixed(1),
      fmtRatio(rssRatio),
      '≤ 2× minimal and ≤ 40 KiB',
      rssRatio <= 2 && ours.memory.perStreamKiB <= 40,
    ],
    [
      `Connect p50 / p99, ms (${fmtInt(plan.connectCount)} streams at ${plan.connectRate}/s)`,
      `${fmtMs(ours.connect.latency.p50)} / ${fmtMs(ours.connect.latency.p99)}`,
      `${fmtMs(minimal.connect.latency.p50)} / ${fmtMs(minimal.connect.latency.p99)}`,
      fmtRatio(ours.connect.latency.p99 / minimal.connect.latency.p99),
      'p99 ≤ 50 ms, all established',
      ours.connect.latency.p99 <= 50 && ours.connect.established === plan.connectCount,
    ],
    [
      `Broadcast latency p50 / p99 / max, ms (${fmtInt(plan.fanoutStreams)} streams, ${plan.broadcastRate} ev/s, ${plan.broadcastSeconds} s)`,
      lat(ours.broadcast.latency),
      lat(minimal.broadcast.latency),
      `p99 ${fmtRatio(latencyRatio)}`,
      'p99 ≤ 1.5× minimal',
      latencyRatio <= 1.5,
    ],
    [
      'Broadcast delivered (received / expected; duplicates or out of order)',
      `${fmtPct(ours.broadcast.ratio)}; ${ours.broadcast.orderErrors}`,
      `${fmtPct(minimal.broadcast.ratio)}; ${minimal.broadcast.orderErrors}`,
      '',
      '100 %; 0',
      ours.broadcast.ratio === 1 && ours.broadcast.orderErrors === 0,
    ],
    [
      `Fan-out throughput, deliveries/s with p99 ≤ ${THROUGHPUT_P99_LIMIT_MS} ms (${fmtInt(plan.fanoutStreams)} streams)`,
      fmtInt(ours.fanout),
      fmtInt(minimal.fanout),
      Number.isFinite(fanoutRatio) ? `${(fanoutRatio * 100).toFixed(0)} %` : 'n/a',
      '≥ 60 % of minimal',
      fanoutRatio >= 0.6,
    ],
  ];
  // Not an acceptance row: the server's own CPU per frame at the fastest step both servers passed,
  // which compares the servers even when the ramp ends because the clients saturate the machine.
  const shared = ours.steps.filter(
    (step) => stepOk(step) && minimal.steps.some((m) => m.rate === step.rate && stepOk(m)),
  );
  const cost = shared.at(-1);
  const minimalCost = minimal.steps.find((step) => step.rate === cost?.rate);
  const info =
    cost && minimalCost
      ? `| Server CPU per delivery, µs (at ${cost.rate} ev/s × ${fmtInt(cost.streams)} streams; info) | ` +
        `${cost.serverUsPerDelivery.toFixed(1)} | ${minimalCost.serverUsPerDelivery.toFixed(1)} | ` +
        `${fmtRatio(cost.serverUsPerDelivery / minimalCost.serverUsPerDelivery)} | — | info |`
      : undefined;
  const lines = [
    `| Metric | ${ours.label} | ${minimal.label} | ours / minimal | Target | Result |`,
    '| --- | ---: | ---: | ---: | --- | --- |',
    ...rows.map(
      ([name, a, b, ratio, target, pass]) => `| ${name} | ${a} | ${b} | ${ratio} | ${target} | ${verdict(pass)} |`,
    ),
    ...(info ? [info] : []),
  ];
  return { table: lines.join('\n'), passed: rows.filter((row) => row[5]).length, rows: rows.length };
}

/** The numbers behind the table: RSS samples, every delivery window with its CPU split. */
export function detailTables(results: readonly ServerResult[]): string {
  const memory = [
    '| Server | RSS before → after each quarter of the streams, MiB | KiB/stream (ΔRSS/N) | segments used | V8 heap KiB/stream | open time, s | connect p50 / p99 during ramp, ms | failures | primed with |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |',
    ...results.map(
      (r) =>
        `| ${r.label} | ${r.memory.points.map((point) => (point.rssKiB / 1024).toFixed(1)).join(' → ')} | ` +
        `${r.memory.perStreamKiB.toFixed(1)} | ${r.memory.segmentsUsed} of ${r.memory.points.length - 1} | ` +
        `${r.memory.heapPerStreamKiB.toFixed(1)} | ${r.memory.openSeconds.toFixed(1)} | ` +
        `${fmtMs(r.memory.rampConnect.p50)} / ${fmtMs(r.memory.rampConnect.p99)} | ` +
        `${r.memory.failed === 0 ? 'none' : JSON.stringify(r.memory.failures)} | ${r.memory.prime} |`,
    ),
  ];
  const steps = [
    '| Server | phase | target ev/s | published ev/s | deliveries/s | p50 ms | p99 ms | max ms | delivered | disconnects | CPU server | CPU clients | CPU other | server µs/delivery |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of results) {
    const rows = [
      ['broadcast', r.broadcast] as const,
      ...r.steps.map((step) => [step.attempt > 1 ? 'step (2nd try)' : 'step', step] as const),
    ];
    for (const [phase, step] of rows) {
      steps.push(
        `| ${r.label} | ${phase} | ${step.rate} | ${step.publishedPerSec.toFixed(1)} | ${fmtInt(step.deliveriesPerSec)} | ` +
          `${fmtMs(step.latency.p50)} | ${fmtMs(step.latency.p99)} | ${fmtMs(step.latency.max)} | ${fmtPct(step.ratio)} | ` +
          `${step.disconnects} | ${step.serverCpuPct.toFixed(0)} % | ${step.clientCpuPct.toFixed(0)} % | ${step.otherCpuPct.toFixed(0)} % | ` +
          `${step.serverUsPerDelivery.toFixed(1)} |`,
      );
    }
  }
  return [
    '### Memory phase',
    '',
    ...memory,
    '',
    '### Delivery windows',
    '',
    'CPU is % of one core while publishing: the server; load generators + publisher; everything else on the machine.',
    '',
    ...steps,
  ].join('\n');
}

/** A warning when other work on the machine took enough CPU to distort latency and throughput. */
export function noiseWarning(results: readonly ServerResult[]): string | undefined {
  const windows = results.flatMap((r) => [r.broadcast, ...r.steps]);
  const worst = Math.max(0, ...windows.map((w) => w.otherCpuPct));
  if (worst < 25) return undefined;
  return (
    `⚠ Other processes used up to ${worst.toFixed(0)} % of a core during the delivery windows (the machine has ` +
    `2 cores shared by the server, the load generators and the publisher): latency and throughput rows are ` +
    `distorted; re-run on an idle machine before trusting a FAIL (or a PASS) there.`
  );
}
