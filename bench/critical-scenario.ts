import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createScratchDatabase } from '../packages/server/test/helpers/scratch-database.js';
import { LoadPool } from './load-pool.js';
import {
  type Bench,
  type DeliveryResult,
  fmtInt,
  fmtMs,
  fmtPct,
  log,
  openFanout,
  type Plan,
  quiet,
  sampleDelivery,
  toResult,
  waitForQuiet,
} from './phases.js';
import { type Cleanups, OUR_ENTRY, ourServerEnv, runCleanups, startOurServer } from './processes.js';
import { Publisher, publisherToken } from './publisher.js';

/**
 * `npm run bench -- --scenario=critical` — what "durable before visible" costs a critical publish:
 * stored pending, published, then given its id, before the 201 (apps/backend/src/events/
 * event-publisher.ts). One instance of ours per store — PGlite (embedded) and PostgreSQL (a scratch
 * database on 127.0.0.1:5432) — with a few streams on `broadcast`, and for each:
 * - publish → delivery p50/p99 of critical events at a steady rate (the load generator's clock
 *   method: receive time − the send time in the title, so it includes the POST, the store's writes
 *   before the fan-out and the client's read), next to non-critical events at the same rate;
 * - critical publishes/s: 64 requests in flight for a few seconds, counting the 201s.
 * See bench/README.md.
 */

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const STREAM_PATH = '/api/sse/stream?topics=broadcast';
const PUBLISH_PATH = '/api/events';
const STREAMS = 10;
const RATE = 50;
const IN_FLIGHT = 64;

interface StoreResult {
  store: string;
  critical: DeliveryResult;
  nonCritical: DeliveryResult;
  /** 201s per second with {@link IN_FLIGHT} requests outstanding, and the failures. */
  publishesPerSec: number;
  failures: Record<string, number>;
}

export async function runCriticalScenario(options: { quick: boolean }): Promise<void> {
  const seconds = options.quick ? 3 : 10;
  const burstSeconds = options.quick ? 2 : 5;
  log(
    `scenario critical: ${STREAMS} streams, ${RATE} ev/s × ${seconds} s, then ${IN_FLIGHT} in flight × ${burstSeconds} s`,
  );
  const results: StoreResult[] = [];
  for (const store of ['pglite', 'postgres'] as const) {
    const cleanups: Cleanups = [];
    try {
      const env: Record<string, string> = {};
      if (store === 'postgres') {
        const database = await createScratchDatabase();
        cleanups.push(() => database.drop());
        env.DATABASE_URL = database.url;
      }
      results.push(await measureStore(store, env, { seconds, burstSeconds }, cleanups));
    } finally {
      await runCleanups(cleanups);
    }
  }
  await report(results, options.quick);
}

async function measureStore(
  store: string,
  env: Record<string, string>,
  load: { seconds: number; burstSeconds: number },
  cleanups: Cleanups,
): Promise<StoreResult> {
  const secret = randomBytes(32).toString('hex');
  const server = await startOurServer({ secret, env, cleanups });
  log(`ours on ${store}: pid ${server.pid} at ${server.baseUrl}`);
  const pool = await LoadPool.start({
    processes: 1,
    baseUrl: server.baseUrl,
    streamPath: STREAM_PATH,
    secret,
  });
  cleanups.push(() => pool.stop());
  const token = await publisherToken(secret);
  const critical = new Publisher(server.baseUrl, { path: PUBLISH_PATH, token, critical: true });
  const nonCritical = new Publisher(server.baseUrl, { path: PUBLISH_PATH, token });
  cleanups.push(async () => {
    critical.close();
    nonCritical.close();
  });
  const plan: Plan = {
    name: 'critical',
    connections: STREAMS,
    openRate: 100,
    connectCount: 0,
    connectRate: 1,
    fanoutStreams: STREAMS,
    broadcastRate: RATE,
    broadcastSeconds: load.seconds,
    broadcastRoundSeconds: load.seconds,
    steps: [],
    stepSeconds: 0,
    settleMs: 1_000,
  };
  const spec = {
    kind: 'ours' as const,
    label: `ours (${store})`,
    entry: OUR_ENTRY,
    streamPath: STREAM_PATH,
    publishPath: PUBLISH_PATH,
    env: ourServerEnv,
  };
  const bench: Bench = { spec, server, pool, publisher: critical, plan };
  await openFanout(bench);
  const criticalResult = toResult(await sampleDelivery(bench, { rate: RATE, seconds: load.seconds }));
  const nonCriticalResult = toResult(
    await sampleDelivery({ ...bench, publisher: nonCritical }, { rate: RATE, seconds: load.seconds }),
  );
  log(
    `${store}: critical p50 ${fmtMs(criticalResult.latency.p50)} / p99 ${fmtMs(criticalResult.latency.p99)} ms, ` +
      `non-critical p50 ${fmtMs(nonCriticalResult.latency.p50)} / p99 ${fmtMs(nonCriticalResult.latency.p99)} ms`,
  );
  await waitForQuiet(`${store} critical burst`);
  // As fast as the server answers: far more due than 64 in flight allow.
  const burst = await critical.run(100_000, load.burstSeconds * 1_000, IN_FLIGHT);
  const publishesPerSec = burst.accepted / ((burst.endedAt - burst.startedAt) / 1_000);
  log(`${store}: ${fmtInt(publishesPerSec)} critical publishes/s (${burst.failed} failed)`);
  return {
    store,
    critical: criticalResult,
    nonCritical: nonCriticalResult,
    publishesPerSec,
    failures: burst.statuses,
  };
}

async function report(results: readonly StoreResult[], quickRun: boolean): Promise<void> {
  const header =
    `## Critical publish benchmark${quickRun ? ' (smoke run)' : ''}\n\n` +
    `${new Date().toISOString()} · node ${process.version} · ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'} · ` +
    `one instance per store, ${STREAMS} streams, load generator and publisher on 127.0.0.1 · ` +
    `waited ${(quiet.waitedMs / 1000).toFixed(0)} s for quiet`;
  const table = [
    '| Store | Critical publish → delivery p50 / p99 (ms) | Non-critical p50 / p99 (ms) | Delivered | Critical publishes/s (64 in flight) | Failed |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...results.map(
      (result) =>
        `| ${result.store} | ${fmtMs(result.critical.latency.p50)} / ${fmtMs(result.critical.latency.p99)} | ` +
        `${fmtMs(result.nonCritical.latency.p50)} / ${fmtMs(result.nonCritical.latency.p99)} | ` +
        `${fmtPct(result.critical.ratio)} | ${fmtInt(result.publishesPerSec)} | ` +
        `${Object.values(result.failures).reduce((sum, count) => sum + count, 0)} |`,
    ),
  ].join('\n');
  const text = `${header}\n\n${table}\n`;
  console.log(`\n${text}`);
  await mkdir(RESULTS_DIR, { recursive: true });
  await writeFile(join(RESULTS_DIR, 'critical-latest.md'), text);
  console.log('written to bench/results/critical-latest.md');
}
