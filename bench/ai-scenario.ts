import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { Agent, request, type ClientRequest } from 'node:http';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { signDevToken } from '../packages/server/src/adapters/auth/dev-token.js';
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
import { sideBySideVerdictTable, type SideBySideRow } from './report.js';

/**
 * `npm run bench -- --scenario=ai`: 200 concurrent AI generations at 50 tokens/s each through one
 * instance of our server, once with each client of an OpenAI-compatible endpoint (AI_CLIENT=direct,
 * then ai-sdk), side by side. The model is bench/fake-provider.ts (a child process, OpenAI-compatible,
 * `AI_BASE_URL` points at it) that records when it wrote each token; 200 users each hold one
 * `user:<id>` stream (in this process). Generations arrive at 25/s, so that from 8 s on 200 run at
 * once; the TTFT target is judged on the ones that start then. A start burst (200 generations
 * within 1 s on an idle server) follows and is reported as info. See bench/README.md.
 */

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));

const USERS = 200;
const TOKENS_PER_SECOND = 50;
/** 400 tokens at 50/s: every generation streams for 8 s. */
const MAX_TOKENS = 400;
const GENERATION_MS = (MAX_TOKENS / TOKENS_PER_SECOND) * 1000;
/** Arrivals of the steady phase: one every 40 ms keeps USERS generations running once the first ends. */
const ARRIVAL_INTERVAL_MS = GENERATION_MS / USERS;
/** Two rounds of arrivals: the first ramps up to 200 running, the second is measured at 200 running. */
const STEADY_GENERATIONS = 2 * USERS;
/** The start burst: USERS generations within this window. */
const BURST_SPREAD_MS = 1_000;
const FLUSH_MS = 40;
const TARGET_DELTA_P99_MS = 60;
const TARGET_TTFT_ADDED_P99_MS = 10;
const DEADLINE_MS = 60_000;
/** Longest wait for a quiet machine before each phase. */
const QUIET_BUDGET_MS = 20_000;

interface User {
  name: string;
  token: string;
}

type Phase = 'steady' | 'burst';

interface Generation {
  user: User;
  prompt: string;
  phase: Phase;
  /** Steady phase: started while the whole first round still ran (200 at once). */
  measured: boolean;
  id?: string;
  postedAt: number;
  /** Orchestrator clock. */
  firstDeltaAt?: number;
  deltas: { seq: number; text: string }[];
  tokensSeen: number;
  completedText?: string;
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

/** What the orchestrator reads of an event's data. */
interface Envelope {
  ts: string;
  payload: Record<string, unknown>;
}

/** Opens the `user:<id>` stream of a user and routes its AI events to `onEvent`. */
function openStream(baseUrl: URL, user: User, onEvent: (type: string, data: string, at: number) => void): StreamClient {
  let resolveEstablished = () => {};
  let rejectEstablished: (error: Error) => void = () => {};
  const established = new Promise<void>((resolve, reject) => {
    resolveEstablished = resolve;
    rejectEstablished = reject;
  });
  const req = request({
    host: baseUrl.hostname,
    port: baseUrl.port,
    path: `/api/sse/stream?topics=${encodeURIComponent(`user:${user.name}`)}`,
    method: 'GET',
    agent: false,
    headers: { authorization: `Bearer ${user.token}`, accept: 'text/event-stream' },
  });
  let rest = '';
  req.on('response', (response) => {
    if (response.statusCode !== 200) {
      response.resume();
      rejectEstablished(new Error(`stream of ${user.name}: HTTP ${response.statusCode ?? 0}`));
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

/**
 * Kept-alive connections for the POSTs: a connect per POST, or `fetch`'s WHATWG machinery (and its
 * lazy loading on first use), would hold up this process while it timestamps the first deltas.
 */
const postAgent = new Agent({ keepAlive: true });

/** `POST /api/ai/generations` through node:http. */
function post(baseUrl: URL, token: string, body: unknown): Promise<{ status: number; json: unknown }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: baseUrl.hostname,
        port: baseUrl.port,
        path: '/api/ai/generations',
        method: 'POST',
        agent: postAgent,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          try {
            resolve({ status: response.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
          }
        });
        response.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The two clients of an OpenAI-compatible endpoint (AI_CLIENT), measured one after the other. */
const CLIENTS = [
  { client: 'direct', label: 'direct client' },
  { client: 'ai-sdk', label: 'AI SDK adapter' },
] as const;
type Client = (typeof CLIENTS)[number]['client'];

/** The fake model process and what talks to it. */
interface ProviderHandle {
  process: ChildProcess;
  pending: Pending;
  nextId: () => number;
  baseUrl: string;
  /** Provider clock − orchestrator clock. */
  offset: number;
}

/** What one client's run measured: its generations and the CPU its server used in the steady phase. */
interface ClientRun {
  steady: Generation[];
  burst: Generation[];
  deltaLatency: LatencySummary;
  cpuMs: number;
  ownCpuMs: number;
  otherCpuMs: number;
  runSeconds: number;
  rejected: number;
  protocolErrors: number;
}

/**
 * One client's run on a fresh server (AI_CLIENT=`client`) against the shared fake model: 200 users
 * with one stream each, the steady phase, then the start burst.
 */
async function runClient(client: Client, model: ProviderHandle): Promise<ClientRun> {
  const cleanups: Cleanups = [];
  try {
    const secret = randomBytes(32).toString('hex');
    const server = await startOurServer({
      secret,
      env: {
        AI_PROVIDER: 'openai-compatible',
        AI_CLIENT: client,
        AI_BASE_URL: model.baseUrl,
        AI_MODEL: 'bench-model',
        AI_API_KEY: 'bench',
        AI_FLUSH_MS: String(FLUSH_MS),
        AI_MAX_CONCURRENT_PER_USER: '10',
      },
      cleanups,
    });
    log(`ours (AI_CLIENT=${client}): pid ${server.pid} at ${server.baseUrl}`);
    const baseUrl = new URL(server.baseUrl);

    // 200 users, one stream each.
    const users: User[] = await Promise.all(
      Array.from({ length: USERS }, async (_, i) => ({
        name: `ai${i}`,
        token: await signDevToken(secret, { userId: `ai${i}`, expiresIn: 3600 }),
      })),
    );
    const byId = new Map<string, Generation>();
    /** Events of a generation whose POST has not answered yet (its id is not known here yet). */
    const early = new Map<string, [string, Envelope, number][]>();
    const deltaLatency = new Histogram();
    let protocolErrors = 0;
    const apply = (generation: Generation, type: string, envelope: Envelope, at: number) => {
      if (type === 'ai.generation.delta') {
        const text = String(envelope.payload.text);
        generation.deltas.push({ seq: Number(envelope.payload.seq), text });
        generation.tokensSeen += text.split(' ').length - 1;
        generation.frames.push({ at, tokens: generation.tokensSeen });
        generation.firstDeltaAt ??= at;
        deltaLatency.record(Math.max(0, at - Date.parse(envelope.ts)));
      } else if (type === 'ai.generation.completed') generation.completedText = String(envelope.payload.text);
      else if (type === 'ai.generation.failed') protocolErrors++;
    };
    const onEvent = (type: string, data: string, at: number) => {
      const envelope = JSON.parse(data) as Envelope;
      const id = envelope.payload.generationId;
      if (typeof id !== 'string') return;
      const generation = byId.get(id);
      if (generation) apply(generation, type, envelope, at);
      else early.set(id, [...(early.get(id) ?? []), [type, envelope, at]]);
    };
    const streams = users.map((user) => openStream(baseUrl, user, onEvent));
    cleanups.push(async () => {
      for (const stream of streams) stream.request.destroy();
    });
    await Promise.all(streams.map((stream) => stream.established));
    log(`${USERS} streams established`);

    let rejected = 0;
    /** Starts `generation` at `at` (orchestrator clock). */
    const start = async (generation: Generation, at: number) => {
      await sleep(Math.max(0, at - nowMs()));
      generation.postedAt = nowMs();
      const { status, json } = await post(baseUrl, generation.user.token, {
        prompt: generation.prompt,
        maxTokens: MAX_TOKENS,
      });
      const id = (json as { generationId?: unknown }).generationId;
      if (status !== 202 || typeof id !== 'string') {
        rejected++;
        log(`generation of ${generation.user.name}: HTTP ${status} ${JSON.stringify(json)}`);
        return;
      }
      generation.id = id;
      byId.set(id, generation);
      for (const [type, envelope, receivedAt] of early.get(id) ?? []) {
        apply(generation, type, envelope, receivedAt);
      }
      early.delete(id);
    };
    const finished = async (cohort: Generation[]) => {
      const deadline = nowMs() + DEADLINE_MS;
      while (cohort.some((g) => g.id !== undefined && g.completedText === undefined) && nowMs() < deadline) {
        await sleep(100);
      }
    };
    // Prompts identify requests at the provider, across both clients' runs.
    const newGeneration = (phase: Phase, index: number, measured: boolean): Generation => ({
      user: users[index % USERS] as User,
      prompt: `bench ${client} ${phase} generation ${index}`,
      phase,
      measured,
      postedAt: 0,
      deltas: [],
      tokensSeen: 0,
      frames: [],
    });

    // Steady phase: arrivals every ARRIVAL_INTERVAL_MS; the second round starts with 200 running.
    await waitForQuiet(`the steady phase (${client})`);
    const steady = Array.from({ length: STEADY_GENERATIONS }, (_, k) => newGeneration('steady', k, k >= USERS));
    const modelPid = model.process.pid;
    const cpuBefore = readCpuMs(server.pid);
    const ownCpuBefore = readCpuMs(process.pid) + (modelPid ? readCpuMs(modelPid) : 0);
    const machineBefore = readMachineBusyMs();
    const runStart = nowMs();
    await Promise.all(steady.map((generation, k) => start(generation, runStart + k * ARRIVAL_INTERVAL_MS)));
    await finished(steady);
    const cpuMs = readCpuMs(server.pid) - cpuBefore;
    const ownCpuMs = readCpuMs(process.pid) + (modelPid ? readCpuMs(modelPid) : 0) - ownCpuBefore;
    const otherCpuMs = Math.max(0, readMachineBusyMs() - machineBefore - cpuMs - ownCpuMs);
    const runSeconds = (nowMs() - runStart) / 1000;
    log(`steady phase (${client}) done in ${runSeconds.toFixed(1)} s`);

    // Start burst: 200 generations within BURST_SPREAD_MS on an idle server (info).
    await waitForQuiet(`the start burst (${client})`);
    const burst = Array.from({ length: USERS }, (_, i) => newGeneration('burst', i, false));
    const burstStart = nowMs();
    await Promise.all(burst.map((generation, i) => start(generation, burstStart + (i * BURST_SPREAD_MS) / USERS)));
    await finished(burst);
    log(`start burst (${client}) done`);
    return {
      steady,
      burst,
      deltaLatency: deltaLatency.summary(),
      cpuMs,
      ownCpuMs,
      otherCpuMs,
      runSeconds,
      rejected,
      protocolErrors,
    };
  } finally {
    await runCleanups(cleanups);
  }
}

/** The numbers of a cohort of generations, against what the provider recorded of them. */
function cohortOf(generations: Generation[], byPrompt: Map<string, ProviderRequestLog>, offset: number) {
  const ttftAdded = new Histogram();
  const ttftProvider = new Histogram();
  const ttftTotal = new Histogram();
  const dispatch = new Histogram();
  const sinceProvider = new Histogram();
  let mismatches = 0;
  let seqGaps = 0;
  let tokens = 0;
  let deltaFrames = 0;
  let firstDeltaAt = Number.POSITIVE_INFINITY;
  let lastDeltaAt = 0;
  for (const g of generations) {
    const log = byPrompt.get(g.prompt);
    tokens += log?.tokenTimes.length ?? 0;
    deltaFrames += g.deltas.length;
    for (const frame of g.frames) {
      firstDeltaAt = Math.min(firstDeltaAt, frame.at);
      lastDeltaAt = Math.max(lastDeltaAt, frame.at);
    }
    if (g.completedText === undefined) continue;
    const ordered = [...g.deltas].sort((a, b) => a.seq - b.seq);
    if (ordered.some((d, i) => i > 0 && d.seq !== (ordered[i - 1]?.seq ?? 0) + 1)) seqGaps++;
    if (ordered.map((d) => d.text).join('') !== g.completedText) mismatches++;
    const first = log?.tokenTimes[0];
    if (!log || first === undefined || g.firstDeltaAt === undefined) continue;
    if (g.phase === 'burst' || g.measured) {
      ttftAdded.record(Math.max(0, g.firstDeltaAt - (first - offset)));
      ttftProvider.record(first - log.receivedAt);
      dispatch.record(log.receivedAt - offset - g.postedAt);
      ttftTotal.record(g.firstDeltaAt - g.postedAt);
    }
    for (const frame of g.frames) {
      const written = log.tokenTimes[frame.tokens - 1];
      if (written === undefined) continue;
      sinceProvider.record(Math.max(0, frame.at - (written - offset)));
    }
  }
  const completed = generations.filter((g) => g.completedText !== undefined).length;
  const windowS = (lastDeltaAt - firstDeltaAt) / 1000;
  return {
    ttftAdded: ttftAdded.summary(),
    ttftProvider: ttftProvider.summary(),
    ttftTotal: ttftTotal.summary(),
    dispatch: dispatch.summary(),
    sinceToken: sinceProvider.summary(),
    mismatches,
    seqGaps,
    tokens,
    deltaFrames,
    completed,
    framesPerSec: windowS > 0 ? deltaFrames / windowS : 0,
  };
}

export async function runAiScenario(): Promise<void> {
  const startedAt = nowMs();
  log(
    `scenario ai: for the direct client, then the AI SDK adapter: ${STEADY_GENERATIONS} generations at ` +
      `${1000 / ARRIVAL_INTERVAL_MS}/s (200 concurrent), then a burst of ${USERS}; ` +
      `${MAX_TOKENS} tokens each at ${TOKENS_PER_SECOND} tokens/s; node ${process.version}`,
  );
  const busyBefore = readMachineBusyMs();
  await sleep(1_000);
  const background = (readMachineBusyMs() - busyBefore) / 10;
  const cleanups: Cleanups = [];
  try {
    // The fake model, in its own process, shared by both clients' runs.
    const child = forkTs(fileURLToPath(new URL('./fake-provider.ts', import.meta.url)));
    cleanups.push(() => stopChild(child, 5_000));
    cleanups.push(async () => postAgent.destroy());
    const pending: Pending = new Map();
    let ids = 0;
    const nextId = () => ++ids;
    const providerUrl = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('fake provider did not start')), 30_000);
      child.on('message', (reply: ProviderReply) => {
        if (reply.type === 'ready') {
          clearTimeout(timer);
          resolve(reply.baseUrl);
        } else {
          pending.get(reply.id)?.(reply);
          pending.delete(reply.id);
        }
      });
    });
    log(`fake provider: pid ${child.pid ?? '?'} at ${providerUrl}`);
    const offset = await clockOffset(child, pending, nextId);
    log(`provider clock offset ${offset.toFixed(2)} ms`);
    const model: ProviderHandle = { process: child, pending, nextId, baseUrl: providerUrl, offset };
    quiet.budgetMs = QUIET_BUDGET_MS;

    const runs: ClientRun[] = [];
    for (const { client } of CLIENTS) runs.push(await runClient(client, model));

    const report = await ask(child, pending, { type: 'report', id: nextId() });
    const requests: ProviderRequestLog[] = report.type === 'report' ? report.requests : [];
    const byPrompt = new Map(requests.map((r) => [r.prompt, r]));

    // Numbers, per client.
    const results = runs.map((run) => {
      const all = [...run.steady, ...run.burst];
      const atLoad = cohortOf(run.steady, byPrompt, offset);
      return {
        run,
        all,
        total: cohortOf(all, byPrompt, offset),
        atLoad,
        starting: cohortOf(run.burst, byPrompt, offset),
        cpuPer1000: atLoad.tokens > 0 ? (run.cpuMs / atLoad.tokens) * 1000 : NaN,
        measuredCount: run.steady.filter((g) => g.measured && g.firstDeltaAt !== undefined).length,
      };
    });
    type Result = (typeof results)[number];
    const lat = (s: LatencySummary) => `${fmtMs(s.p50)} / ${fmtMs(s.p99)} / ${fmtMs(s.max)}`;
    const p50p99 = (s: LatencySummary) => `${fmtMs(s.p50)} / ${fmtMs(s.p99)}`;
    /** One row: the same metric for every client, judged per client when it has a target. */
    const row = (
      name: string,
      value: (result: Result) => string,
      target = 'info',
      pass?: (result: Result) => boolean,
    ): SideBySideRow => [name, results.map(value), target, results.map((result) => pass?.(result))];
    const allCount = results[0]?.all.length ?? 0;
    const rows: SideBySideRow[] = [
      row(
        `Generations completed (of ${allCount}: ${STEADY_GENERATIONS} steady + ${USERS} burst, ${MAX_TOKENS} tokens each at ${TOKENS_PER_SECOND}/s)`,
        (r) => fmtInt(r.total.completed),
        `all ${allCount}`,
        (r) => r.total.completed === r.all.length,
      ),
      row(
        'Completed text ≠ concatenated deltas (or seq gaps)',
        (r) => `${r.total.mismatches} (${r.total.seqGaps})`,
        '0',
        (r) => r.total.mismatches === 0 && r.total.seqGaps === 0,
      ),
      row('Delta frames emitted, frames/s (steady phase, first → last delta received)', (r) =>
        fmtInt(r.atLoad.framesPerSec),
      ),
      row('Delta delivery latency p50 / p99 / max, ms (receive − envelope ts, ms resolution; both phases)', (r) =>
        lat(r.run.deltaLatency),
      ),
      row(
        `Delta delivery latency incl. coalescing p50 / p99 / max, ms (receive − provider write of the frame's last token; AI_FLUSH_MS=${FLUSH_MS}; both phases)`,
        (r) => lat(r.total.sinceToken),
        `p99 ≤ ${TARGET_DELTA_P99_MS} ms`,
        (r) => r.total.sinceToken.p99 <= TARGET_DELTA_P99_MS,
      ),
      row(
        `TTFT added by our layer at 200 concurrent p50 / p99 / max, ms (first delta received − provider wrote first token; the ${fmtInt(results[0]?.measuredCount ?? 0)} generations started while 200 ran)`,
        (r) => lat(r.atLoad.ttftAdded),
        `p99 ≤ ${TARGET_TTFT_ADDED_P99_MS} ms`,
        (r) => r.atLoad.ttftAdded.p99 <= TARGET_TTFT_ADDED_P99_MS,
      ),
      row(
        `Same, start burst p50 / p99 / max, ms (${USERS} generations started within ${BURST_SPREAD_MS / 1000} s on the idle, warm server; info)`,
        (r) => lat(r.starting.ttftAdded),
      ),
      row(
        "TTFT provider's own p50 / p99, ms (provider got the request → wrote first token; at 200 concurrent; info)",
        (r) => p50p99(r.atLoad.ttftProvider),
      ),
      row(
        'POST sent → provider got the request p50 / p99, ms (our dispatch: at 200 concurrent · start burst; info)',
        (r) => `${p50p99(r.atLoad.dispatch)} · ${p50p99(r.starting.dispatch)}`,
      ),
      row(
        'TTFT end to end p50 / p99, ms (POST sent → first delta received: at 200 concurrent · start burst; info)',
        (r) => `${p50p99(r.atLoad.ttftTotal)} · ${p50p99(r.starting.ttftTotal)}`,
      ),
      row(
        'Server CPU per 1,000 tokens, ms (steady phase: server CPU / tokens the provider wrote)',
        (r) => `${r.cpuPer1000.toFixed(1)} (${fmtInt(r.run.cpuMs)} ms / ${fmtInt(r.atLoad.tokens)})`,
      ),
    ];
    const { table, passed, judged } = sideBySideVerdictTable(
      CLIENTS.map(({ label }) => label),
      rows,
    );
    const pctOfCore = (ms: number, seconds: number) => `${((ms / (seconds * 1000)) * 100).toFixed(0)} %`;
    const cpuSplit = results
      .map(
        ({ run }, i) =>
          `${CLIENTS[i]?.label ?? ''}: steady phase ${run.runSeconds.toFixed(1)} s, server ${pctOfCore(run.cpuMs, run.runSeconds)}, ` +
          `provider + clients ${pctOfCore(run.ownCpuMs, run.runSeconds)}, everything else ${pctOfCore(run.otherCpuMs, run.runSeconds)}`,
      )
      .join(' · ');
    const header =
      `## SSE benchmark — scenario ai\n\n` +
      `${new Date().toISOString()} · node ${process.version} · ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'} · ` +
      `one server per client (AI_CLIENT=direct, then ai-sdk; AI_PROVIDER=openai-compatible), the fake provider ` +
      `(bench/fake-provider.ts, own process) and ${USERS} client streams on 127.0.0.1 · ` +
      `${((nowMs() - startedAt) / 60_000).toFixed(1)} min · CPU, % of a core: ${cpuSplit} · ` +
      `waited ${(quiet.waitedMs / 1000).toFixed(0)} s for quiet${quiet.exhausted ? ' (budget exhausted)' : ''} · ` +
      `background CPU before start ${background.toFixed(0)} % of a core`;
    const notes = results
      .map(
        ({ run, total }, i) =>
          `${CLIENTS[i]?.label ?? ''}: ${fmtInt(total.deltaFrames)} delta frames, ${fmtInt(total.tokens)} tokens, ` +
          `${run.rejected} POSTs refused, ${run.protocolErrors} ai.generation.failed events.`,
      )
      .join(' ');
    const distorted = results.filter(({ run }) => run.otherCpuMs / (run.runSeconds * 1000) > 0.25);
    const warning =
      distorted.length > 0
        ? `\n\n⚠ Other processes used over 25 % of a core during the generations (2 cores shared by the server, ` +
          'the provider and the clients): the latency and TTFT rows are distorted; re-run on an idle machine before ' +
          'trusting a FAIL (or a PASS) there.'
        : '';
    const text =
      `${header}\n\n${table}\n\n${passed} of ${judged} judged cells pass. ${notes} ` +
      `Provider clock offset ${offset.toFixed(2)} ms.${warning}\n`;
    console.log(`\n${text}`);
    await mkdir(RESULTS_DIR, { recursive: true });
    await writeFile(join(RESULTS_DIR, 'ai-latest.md'), text);
    console.log('written to bench/results/ai-latest.md');
  } finally {
    await runCleanups(cleanups);
  }
}
