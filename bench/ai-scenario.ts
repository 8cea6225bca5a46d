import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { request, type ClientRequest } from 'node:http';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { signDevToken } from '../apps/backend/src/auth/dev-token.js';
import type { ProviderCommand, ProviderReply, ProviderRequestLog } from './fake-provider.js';
import { Histogram, type LatencySummary, nowMs } from './histogram.js';
import { fmtInt, fmtMs, log, quiet, waitForQuiet } from './phases.js';
import {
  type Cleanups,
  forkTs,
  readCpuMs,
  readMachineBusyMs,
  runCleanups,
  startOurServer,
  stopChild,
} from './processes.js';
import { verdictTable, type VerdictRow } from './report.js';

/**
 * `npm run bench -- --scenario=ai`: 200 concurrent AI generations at 50 tokens/s each through one
 * instance of our server. The model is bench/fake-provider.ts (a child process, OpenAI-compatible,
 * `AI_BASE_URL` points at it) that records when it wrote each token; 200 users each hold one
 * `user:<id>` stream (in this process) and start one generation. See bench/README.md.
 */

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));

const GENERATIONS = 200;
const TOKENS_PER_SECOND = 50;
/** 400 tokens at 50/s: every generation streams for 8 s. */
const MAX_TOKENS = 400;
/** The generations start spread over this window (not all in one millisecond). */
const START_SPREAD_MS = 1_000;
const FLUSH_MS = 40;
const TARGET_DELTA_P99_MS = 60;
const TARGET_TTFT_ADDED_P99_MS = 10;
const DEADLINE_MS = 60_000;
/** Longest wait for a quiet machine before the generations start (the whole run stays ~1 min). */
const QUIET_BUDGET_MS = 20_000;

interface Generation {
  user: string;
  token: string;
  prompt: string;
  id?: string;
  postedAt: number;
  /** Orchestrator clock. */
  startedAt?: number;
  firstDeltaAt?: number;
  deltas: { seq: number; text: string }[];
  tokensSeen: number;
  completedText?: string;
  completedAt?: number;
  /** Receive time of each delta frame and the number of tokens received so far, for the provider comparison. */
  frames: { at: number; tokens: number }[];
}

interface StreamClient {
  request: ClientRequest;
  established: Promise<void>;
}

type Pending = Map<number, (reply: ProviderReply) => void>;

/** Sends a command to the provider process and waits for the reply with the same id. */
function ask(child: ChildProcess, pending: Pending, command: ProviderCommand): Promise<ProviderReply> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fake provider: no reply to ${command.type}`)), 10_000);
    pending.set(command.id, (reply) => {
      clearTimeout(timer);
      resolve(reply);
    });
    child.send(command);
  });
}

/** Provider clock − orchestrator clock, from the ping with the shortest round trip. */
async function clockOffset(child: ChildProcess, pending: Pending, nextId: () => number): Promise<number> {
  let best = { rtt: Number.POSITIVE_INFINITY, offset: 0 };
  for (let i = 0; i < 20; i++) {
    const sent = nowMs();
    const reply = await ask(child, pending, { type: 'ping', id: nextId() });
    const received = nowMs();
    if (reply.type !== 'pong') continue;
    const rtt = received - sent;
    if (rtt < best.rtt) best = { rtt, offset: reply.now - (sent + received) / 2 };
  }
  return best.offset;
}

/** Opens the `user:<id>` stream of a generation's user and routes its AI events to `onEvent`. */
function openStream(
  baseUrl: URL,
  generation: Generation,
  onEvent: (type: string, data: string, at: number) => void,
): StreamClient {
  let resolveEstablished = () => {};
  let rejectEstablished: (error: Error) => void = () => {};
  const established = new Promise<void>((resolve, reject) => {
    resolveEstablished = resolve;
    rejectEstablished = reject;
  });
  const req = request({
    host: baseUrl.hostname,
    port: baseUrl.port,
    path: `/api/sse/stream?topics=${encodeURIComponent(`user:${generation.user}`)}`,
    method: 'GET',
    agent: false,
    headers: { authorization: `Bearer ${generation.token}`, accept: 'text/event-stream' },
  });
  let rest = '';
  req.on('response', (response) => {
    if (response.statusCode !== 200) {
      response.resume();
      rejectEstablished(new Error(`stream of ${generation.user}: HTTP ${response.statusCode ?? 0}`));
      return;
    }
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      const at = nowMs();
      const text = rest + chunk;
      let start = 0;
      for (;;) {
        const end = text.indexOf('\n\n', start);
        if (end === -1) break;
        const frame = text.slice(start, end);
        start = end + 2;
        let type = '';
        const data: string[] = [];
        for (const line of frame.split('\n')) {
          if (line.startsWith('event: ')) type = line.slice(7);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
        }
        if (type === 'connection.established') resolveEstablished();
        else if (type.startsWith('ai.generation.')) onEvent(type, data.join('\n'), at);
      }
      rest = text.slice(start);
    });
  });
  req.on('error', (error) => rejectEstablished(error));
  req.end();
  return { request: req, established };
}

async function post(baseUrl: URL, token: string, body: unknown): Promise<{ status: number; json: unknown }> {
  const response = await fetch(new URL('/api/ai/generations', baseUrl), {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function runAiScenario(): Promise<void> {
  const startedAt = nowMs();
  log(
    `scenario ai: ${GENERATIONS} generations × ${MAX_TOKENS} tokens at ${TOKENS_PER_SECOND} tokens/s; node ${process.version}`,
  );
  const busyBefore = readMachineBusyMs();
  await sleep(1_000);
  const background = (readMachineBusyMs() - busyBefore) / 10;
  const cleanups: Cleanups = [];
  const streams: StreamClient[] = [];
  try {
    // The fake model, in its own process.
    const provider = forkTs(fileURLToPath(new URL('./fake-provider.ts', import.meta.url)));
    cleanups.push(() => stopChild(provider, 5_000));
    const pending: Pending = new Map();
    let ids = 0;
    const nextId = () => ++ids;
    const providerUrl = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('fake provider did not start')), 30_000);
      provider.on('message', (reply: ProviderReply) => {
        if (reply.type === 'ready') {
          clearTimeout(timer);
          resolve(reply.baseUrl);
        } else {
          pending.get(reply.id)?.(reply);
          pending.delete(reply.id);
        }
      });
    });
    log(`fake provider: pid ${provider.pid ?? '?'} at ${providerUrl}`);

    // Our server, pointed at it.
    const secret = randomBytes(32).toString('hex');
    const server = await startOurServer({
      secret,
      env: {
        AI_BASE_URL: providerUrl,
        AI_MODEL: 'bench-model',
        AI_API_KEY: 'bench',
        AI_FLUSH_MS: String(FLUSH_MS),
        AI_MAX_CONCURRENT_PER_USER: '10',
      },
      cleanups,
    });
    log(`ours: pid ${server.pid} at ${server.baseUrl}`);
    const baseUrl = new URL(server.baseUrl);

    // 200 users, one stream and one generation each.
    const generations: Generation[] = await Promise.all(
      Array.from({ length: GENERATIONS }, async (_, i) => ({
        user: `ai${i}`,
        token: await signDevToken(secret, { userId: `ai${i}`, expiresIn: 3600 }),
        prompt: `bench generation ${i}`,
        postedAt: 0,
        deltas: [],
        tokensSeen: 0,
        frames: [],
      })),
    );
    const byId = new Map<string, Generation>();
    const deltaLatency = new Histogram();
    let protocolErrors = 0;
    let firstDeltaAt = Number.POSITIVE_INFINITY;
    let lastDeltaAt = 0;
    const onEvent = (generation: Generation) => (type: string, data: string, at: number) => {
      const envelope = JSON.parse(data) as { ts: string; payload: Record<string, unknown> };
      const generationId = envelope.payload.generationId;
      const target = typeof generationId === 'string' ? (byId.get(generationId) ?? generation) : generation;
      if (type === 'ai.generation.started') target.startedAt = at;
      else if (type === 'ai.generation.delta') {
        const text = String(envelope.payload.text);
        target.deltas.push({ seq: Number(envelope.payload.seq), text });
        target.tokensSeen += text.split(' ').length - 1;
        target.frames.push({ at, tokens: target.tokensSeen });
        target.firstDeltaAt ??= at;
        deltaLatency.record(Math.max(0, at - Date.parse(envelope.ts)));
        firstDeltaAt = Math.min(firstDeltaAt, at);
        lastDeltaAt = Math.max(lastDeltaAt, at);
      } else if (type === 'ai.generation.completed') {
        target.completedText = String(envelope.payload.text);
        target.completedAt = at;
      } else if (type === 'ai.generation.failed') protocolErrors++;
    };
    for (const generation of generations) {
      const stream = openStream(baseUrl, generation, onEvent(generation));
      streams.push(stream);
      cleanups.push(async () => {
        stream.request.destroy();
      });
    }
    await Promise.all(streams.map((stream) => stream.established));
    log(`${GENERATIONS} streams established`);
    const offset = await clockOffset(provider, pending, nextId);
    log(`provider clock offset ${offset.toFixed(2)} ms`);
    quiet.budgetMs = QUIET_BUDGET_MS;
    await waitForQuiet('the generations');

    // Start the generations, spread over START_SPREAD_MS.
    const cpuBefore = readCpuMs(server.pid);
    const ownCpuBefore = readCpuMs(process.pid) + (provider.pid ? readCpuMs(provider.pid) : 0);
    const machineBefore = readMachineBusyMs();
    const runStart = nowMs();
    let rejected = 0;
    await Promise.all(
      generations.map(async (generation, i) => {
        await sleep(Math.max(0, runStart + (i * START_SPREAD_MS) / GENERATIONS - nowMs()));
        generation.postedAt = nowMs();
        const { status, json } = await post(baseUrl, generation.token, {
          prompt: generation.prompt,
          maxTokens: MAX_TOKENS,
        });
        const id = (json as { generationId?: unknown }).generationId;
        if (status !== 202 || typeof id !== 'string') {
          rejected++;
          log(`generation of ${generation.user}: HTTP ${status} ${JSON.stringify(json)}`);
          return;
        }
        generation.id = id;
        byId.set(id, generation);
      }),
    );
    const deadline = nowMs() + DEADLINE_MS;
    while (generations.some((g) => g.id !== undefined && g.completedText === undefined) && nowMs() < deadline) {
      await sleep(100);
    }
    const cpuMs = readCpuMs(server.pid) - cpuBefore;
    const ownCpuMs = readCpuMs(process.pid) + (provider.pid ? readCpuMs(provider.pid) : 0) - ownCpuBefore;
    const otherCpuMs = Math.max(0, readMachineBusyMs() - machineBefore - cpuMs - ownCpuMs);
    const runEnd = nowMs();
    const report = await ask(provider, pending, { type: 'report', id: nextId() });
    const requests: ProviderRequestLog[] = report.type === 'report' ? report.requests : [];
    const byPrompt = new Map(requests.map((r) => [r.prompt, r]));

    // Numbers.
    const ttftAdded = new Histogram();
    const ttftProvider = new Histogram();
    const ttftTotal = new Histogram();
    const dispatch = new Histogram();
    const steady = new Histogram();
    // Steady state: 1 s after the provider received the last request (the start burst is over).
    const steadyFrom = Math.max(0, ...requests.map((r) => r.receivedAt - offset)) + 1_000;
    const sinceProvider = new Histogram();
    let mismatches = 0;
    let incomplete = 0;
    let seqGaps = 0;
    let tokens = 0;
    let deltaFrames = 0;
    for (const g of generations) {
      const log = byPrompt.get(g.prompt);
      tokens += log?.tokenTimes.length ?? 0;
      deltaFrames += g.deltas.length;
      if (g.completedText === undefined) {
        incomplete++;
        continue;
      }
      const ordered = [...g.deltas].sort((a, b) => a.seq - b.seq);
      if (ordered.some((d, i) => i > 0 && d.seq !== (ordered[i - 1]?.seq ?? 0) + 1)) seqGaps++;
      if (ordered.map((d) => d.text).join('') !== g.completedText) mismatches++;
      const first = log?.tokenTimes[0];
      if (!log || first === undefined || g.firstDeltaAt === undefined) continue;
      ttftAdded.record(Math.max(0, g.firstDeltaAt - (first - offset)));
      ttftProvider.record(first - log.receivedAt);
      dispatch.record(log.receivedAt - offset - g.postedAt);
      ttftTotal.record(g.firstDeltaAt - g.postedAt);
      for (const frame of g.frames) {
        const written = log.tokenTimes[frame.tokens - 1];
        if (written === undefined) continue;
        sinceProvider.record(Math.max(0, frame.at - (written - offset)));
        if (frame.at >= steadyFrom) steady.record(Math.max(0, frame.at - (written - offset)));
      }
    }
    const deliveryWindowS = (lastDeltaAt - firstDeltaAt) / 1000;
    const framesPerSec = deliveryWindowS > 0 ? deltaFrames / deliveryWindowS : 0;
    const cpuPer1000 = tokens > 0 ? (cpuMs / tokens) * 1000 : NaN;
    const delta = deltaLatency.summary();
    const sinceToken = sinceProvider.summary();
    const added = ttftAdded.summary();
    const completed = GENERATIONS - rejected - incomplete;
    const lat = (s: LatencySummary) => `${fmtMs(s.p50)} / ${fmtMs(s.p99)} / ${fmtMs(s.max)}`;
    const rows: VerdictRow[] = [
      [
        `Generations completed (of ${GENERATIONS}, ${MAX_TOKENS} tokens each at ${TOKENS_PER_SECOND}/s)`,
        fmtInt(completed),
        `all ${GENERATIONS}`,
        completed === GENERATIONS,
      ],
      [
        'Completed text ≠ concatenated deltas (or seq gaps)',
        `${mismatches} (${seqGaps})`,
        '0',
        mismatches === 0 && seqGaps === 0,
      ],
      ['Delta frames emitted, frames/s (first → last delta received)', fmtInt(framesPerSec), 'info', undefined],
      [
        'Delta delivery latency p50 / p99 / max, ms (receive − envelope ts, ms resolution)',
        lat(delta),
        'info',
        undefined,
      ],
      [
        `Delta delivery latency incl. coalescing p50 / p99 / max, ms (receive − provider write of the frame's last token; AI_FLUSH_MS=${FLUSH_MS})`,
        lat(sinceToken),
        `p99 ≤ ${TARGET_DELTA_P99_MS} ms`,
        sinceToken.p99 <= TARGET_DELTA_P99_MS,
      ],
      [
        'Same, steady state only (frames received ≥ 1 s after the last generation reached the provider; info)',
        lat(steady.summary()),
        'info',
        undefined,
      ],
      [
        'TTFT added by our layer p50 / p99 / max, ms (first delta received − provider wrote first token)',
        lat(added),
        `p99 ≤ ${TARGET_TTFT_ADDED_P99_MS} ms`,
        added.p99 <= TARGET_TTFT_ADDED_P99_MS,
      ],
      [
        "TTFT provider's own p50 / p99, ms (provider got the request → wrote first token; info)",
        `${fmtMs(ttftProvider.summary().p50)} / ${fmtMs(ttftProvider.summary().p99)}`,
        'info',
        undefined,
      ],
      [
        'POST sent → provider got the request p50 / p99, ms (our dispatch, before the provider starts; info)',
        `${fmtMs(dispatch.summary().p50)} / ${fmtMs(dispatch.summary().p99)}`,
        'info',
        undefined,
      ],
      [
        'TTFT end to end p50 / p99, ms (POST sent → first delta received; info)',
        `${fmtMs(ttftTotal.summary().p50)} / ${fmtMs(ttftTotal.summary().p99)}`,
        'info',
        undefined,
      ],
      [
        `Server CPU per 1,000 tokens, ms (${fmtInt(cpuMs)} ms CPU / ${fmtInt(tokens)} tokens)`,
        cpuPer1000.toFixed(1),
        'info',
        undefined,
      ],
    ];
    const { table, passed, judged } = verdictTable('ours (Fastify)', rows);
    const runSeconds = (runEnd - runStart) / 1000;
    const pctOfCore = (ms: number) => `${((ms / (runSeconds * 1000)) * 100).toFixed(0)} %`;
    const header =
      `## SSE benchmark — scenario ai\n\n` +
      `${new Date().toISOString()} · node ${process.version} · ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'} · ` +
      `server, fake provider (bench/fake-provider.ts, own process) and ${GENERATIONS} client streams on 127.0.0.1 · ` +
      `${((nowMs() - startedAt) / 60_000).toFixed(1)} min · generation window ${runSeconds.toFixed(1)} s · ` +
      `CPU during it, % of a core: server ${pctOfCore(cpuMs)}, provider + clients ${pctOfCore(ownCpuMs)}, ` +
      `everything else ${pctOfCore(otherCpuMs)} · waited ${(quiet.waitedMs / 1000).toFixed(0)} s for quiet` +
      `${quiet.exhausted ? ' (budget exhausted)' : ''} · ` +
      `background CPU before start ${background.toFixed(0)} % of a core`;
    const notes =
      `${passed} of ${judged} rows pass. ${fmtInt(deltaFrames)} delta frames, ${fmtInt(tokens)} tokens, ` +
      `${rejected} POSTs refused, ${protocolErrors} ai.generation.failed events; provider clock offset ${offset.toFixed(2)} ms.`;
    const warning =
      otherCpuMs / (runSeconds * 1000) > 0.25
        ? `\n\n⚠ Other processes used ${pctOfCore(otherCpuMs)} of a core during the generations (2 cores shared ` +
          'by the server, the provider and the clients): the latency and TTFT rows are distorted; re-run on an idle ' +
          'machine before trusting a FAIL (or a PASS) there.'
        : '';
    const text = `${header}\n\n${table}\n\n${notes}${warning}\n`;
    console.log(`\n${text}`);
    await mkdir(RESULTS_DIR, { recursive: true });
    await writeFile(join(RESULTS_DIR, 'ai-latest.md'), text);
    console.log('written to bench/results/ai-latest.md');
  } finally {
    await runCleanups(cleanups);
  }
}
