import { request, type ClientRequest } from 'node:http';
import { signDevToken } from '../apps/backend/src/auth/dev-token.js';
import { Histogram, nowMs } from './histogram.js';
import type { LoadCommand, LoadReply, LoadStats, OpenResult } from './ipc.js';

/**
 * One load-generator process (forked by bench/run.ts over IPC, so client CPU is not spent in the
 * orchestrator or the server). It opens SSE streams with node:http, one socket each, measures the
 * connect time (request sent → `connection.established` frame received), parses frames with a
 * hand-written incremental parser and records the delivery latency of every `notification`:
 * receive time − the send time the publisher wrote into the payload title (`b<ms>`).
 */

interface Stream {
  request: ClientRequest;
  state: 'connecting' | 'open' | 'closed';
  /** Bytes of an incomplete frame carried over to the next chunk. */
  rest: string;
  received: number;
  startedAt: number;
  /** Set by closeAll: the end is ours, not a disconnect. */
  closing: boolean;
}

interface Target {
  host: string;
  port: number;
  streamPath: string;
  tokens: string[];
  userOffset: number;
  clockOffsetMs: number;
}

const TITLE_MARKER = '"title":"b';
const ESTABLISHED_MARKER = 'event: connection.established';
const NOTIFICATION_MARKER = 'event: notification';

let target: Target | undefined;
const streams = new Set<Stream>();
const latency = new Histogram();
let received = 0;
let disconnects = 0;
let lastReceivedAt = 0;
let cpuAtReset = process.cpuUsage();
let nextUser = 0;

/** Set by an `open` in progress: called whenever a connecting stream settles. */
let onSettled: ((stream: Stream, outcome: string) => void) | undefined;

function send(reply: LoadReply): void {
  process.send?.(reply);
}

function openOne(at: Target): Stream {
  const token = at.tokens[nextUser++ % at.tokens.length] ?? '';
  const stream: Stream = {
    request: request({
      host: at.host,
      port: at.port,
      path: at.streamPath,
      method: 'GET',
      agent: false,
      headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    }),
    state: 'connecting',
    rest: '',
    received: 0,
    startedAt: nowMs(),
    closing: false,
  };
  streams.add(stream);
  const req = stream.request;
  req.on('response', (response) => {
    if (response.statusCode !== 200) {
      response.resume();
      end(stream, `http_${response.statusCode ?? 0}`);
      return;
    }
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => onChunk(stream, chunk));
    response.on('end', () => end(stream, 'ended'));
    response.on('error', (error: NodeJS.ErrnoException) => end(stream, error.code ?? 'response_error'));
  });
  req.on('error', (error: NodeJS.ErrnoException) => end(stream, error.code ?? 'request_error'));
  req.on('close', () => end(stream, 'closed'));
  req.end();
  return stream;
}

function onChunk(stream: Stream, chunk: string): void {
  const at = nowMs();
  const text = stream.rest.length === 0 ? chunk : stream.rest + chunk;
  let start = 0;
  for (;;) {
    const end = text.indexOf('\n\n', start);
    if (end === -1) break;
    onFrame(stream, text.slice(start, end), at);
    start = end + 2;
  }
  stream.rest = start === text.length ? '' : text.slice(start);
}

function onFrame(stream: Stream, frame: string, at: number): void {
  const eventAt = frame.indexOf('event: ');
  if (eventAt === -1) return; // `retry:` and anything without an event line
  if (frame.startsWith(NOTIFICATION_MARKER, eventAt)) {
    stream.received++;
    received++;
    const titleAt = frame.indexOf(TITLE_MARKER, eventAt);
    if (titleAt === -1) return;
    const from = titleAt + TITLE_MARKER.length;
    const sentAt = Number(frame.slice(from, frame.indexOf('"', from)));
    const receivedAt = at - (target?.clockOffsetMs ?? 0);
    if (Number.isFinite(sentAt)) latency.record(Math.max(0, receivedAt - sentAt));
    lastReceivedAt = receivedAt;
  } else if (stream.state === 'connecting' && frame.startsWith(ESTABLISHED_MARKER, eventAt)) {
    stream.state = 'open';
    onSettled?.(stream, 'established');
  }
}

function end(stream: Stream, reason: string): void {
  if (stream.state === 'closed') return;
  const wasConnecting = stream.state === 'connecting';
  stream.state = 'closed';
  streams.delete(stream);
  stream.request.destroy();
  if (wasConnecting) onSettled?.(stream, reason);
  else if (!stream.closing) disconnects++;
}

/** Opens `count` streams at `ratePerSec`; resolves when all are established or failed, or at the timeout. */
function open(at: Target, command: Extract<LoadCommand, { type: 'open' }>): Promise<OpenResult> {
  const { count, ratePerSec, timeoutMs } = command;
  const connect = new Histogram();
  const failures: Record<string, number> = {};
  const started = nowMs();
  const pending = new Set<Stream>();
  let launched = 0;
  let established = 0;
  let failed = 0;
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      if (timer) clearTimeout(timer);
      clearTimeout(deadline);
      onSettled = undefined;
      for (const stream of pending) {
        failures['timeout'] = (failures['timeout'] ?? 0) + 1;
        failed++;
        stream.closing = true;
        end(stream, 'timeout');
      }
      resolve({ established, failed, failures, connect: connect.toData(), elapsedMs: nowMs() - started });
    };
    const deadline = setTimeout(finish, timeoutMs);
    onSettled = (stream, outcome) => {
      if (!pending.delete(stream)) return;
      if (outcome === 'established') {
        established++;
        connect.record(nowMs() - stream.startedAt);
      } else {
        failed++;
        failures[outcome] = (failures[outcome] ?? 0) + 1;
      }
      if (launched === count && pending.size === 0) finish();
    };
    const launch = () => {
      const due = Math.min(count, Math.floor(((nowMs() - started) * ratePerSec) / 1000) + 1);
      while (launched < due) {
        launched++;
        pending.add(openOne(at));
      }
      if (launched < count) {
        timer = setTimeout(launch, Math.max(0, (launched * 1000) / ratePerSec - (nowMs() - started)));
      } else if (pending.size === 0) {
        finish();
      }
    };
    if (count === 0) finish();
    else launch();
  });
}

function stats(): LoadStats {
  let minPerStream = Infinity;
  let maxPerStream = 0;
  let open = 0;
  for (const stream of streams) {
    if (stream.state !== 'open') continue;
    open++;
    minPerStream = Math.min(minPerStream, stream.received);
    maxPerStream = Math.max(maxPerStream, stream.received);
  }
  const cpu = process.cpuUsage(cpuAtReset);
  return {
    open,
    received,
    minPerStream: open === 0 ? 0 : minPerStream,
    maxPerStream,
    disconnects,
    latency: latency.toData(),
    lastReceivedAt,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

function reset(): void {
  // Collect garbage now (forked with --expose-gc) rather than during the next measurement.
  (globalThis as { gc?: () => void }).gc?.();
  for (const stream of streams) stream.received = 0;
  latency.reset();
  received = 0;
  disconnects = 0;
  lastReceivedAt = 0;
  cpuAtReset = process.cpuUsage();
}

function closeAll(): number {
  let closed = 0;
  for (const stream of [...streams]) {
    stream.closing = true;
    end(stream, 'closed_by_bench');
    closed++;
  }
  return closed;
}

async function init(command: Extract<LoadCommand, { type: 'init' }>): Promise<number> {
  const started = nowMs();
  const url = new URL(command.baseUrl);
  const tokens: string[] = [];
  for (let i = 0; i < command.tokenCount; i++) {
    tokens.push(
      await signDevToken(command.secret, {
        userId: `u${command.userOffset + i}`,
        topics: ['broadcast'],
        expiresIn: 3600,
      }),
    );
  }
  target = {
    host: url.hostname,
    port: Number(url.port),
    streamPath: command.streamPath,
    tokens,
    userOffset: command.userOffset,
    clockOffsetMs: command.clockOffsetMs,
  };
  return nowMs() - started;
}

async function handle(command: LoadCommand): Promise<LoadReply> {
  const { id } = command;
  switch (command.type) {
    case 'ping':
      return { type: 'pong', id, now: nowMs() };
    case 'init':
      return { type: 'ready', id, signMs: await init(command) };
    case 'open':
      if (!target) throw new Error('open before init');
      return { type: 'opened', id, result: await open(target, command) };
    case 'reset':
      reset();
      return { type: 'reset', id };
    case 'stats':
      return { type: 'stats', id, stats: stats() };
    case 'closeAll':
      return { type: 'closed', id, closed: closeAll() };
  }
}

process.on('message', (message: LoadCommand) => {
  handle(message).then(send, (error: unknown) =>
    send({ type: 'error', id: message.id, message: error instanceof Error ? error.message : String(error) }),
  );
});
// The orchestrator is gone (crashed or finished): never outlive it.
process.on('disconnect', () => {
  closeAll();
  process.exit(0);
});
