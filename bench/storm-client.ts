import { connect, type Socket } from 'node:net';
import { decodeChunked } from './chunked-body.js';
import { streamTokens } from './stream-tokens.js';
import { nowMs } from './histogram.js';

/**
 * The clients of the reconnect storm (bench/storm-scenario.ts), one forked process: N SSE streams
 * over plain TCP sockets (the core load generator's reasons: a frame must cost the client little,
 * it shares the cores with the servers). Each stream behaves as the client package does when its
 * stream drops (packages/client: connection-controller.ts, backoff.ts): it waits a full-jitter
 * delay — `floor + random × min(maxMs − floor, base × 2^failures)` with floor = base = the
 * server's `retry:` (RETRY_MS, 2 s by default) when it sent one, baseMs 500 and maxMs 30 s
 * otherwise, and a `Retry-After` as a floor on a 429/503 — then reconnects with `Last-Event-ID`,
 * to the failover URL (what a load balancer does once the dead instance fails its checks).
 *
 * Per stream it keeps the ids of the `notification`s it received (ascending; one that is not above
 * the previous one counts as a duplicate) and when `stream.resumed` arrived, so the orchestrator
 * can tell, against the ids its publisher got back, what each stream lost.
 */

export type StormCommand =
  | {
      type: 'init';
      baseUrl: string;
      failoverUrl: string;
      streamPath: string;
      secret: string;
      userOffset: number;
      count: number;
    }
  | { type: 'open'; ratePerSec: number; timeoutMs: number }
  | { type: 'stats' }
  | { type: 'result'; acceptedIds: number[] }
  | { type: 'closeAll' };

export interface StormStats {
  open: number;
  /** Streams that received at least one notification (so they have a Last-Event-ID). */
  withId: number;
  received: number;
  resumedComplete: number;
  resumedIncomplete: number;
  /** Streams neither open nor waiting for a retry (should stay 0). */
  givenUp: number;
}

export interface StormResult {
  /** Absolute times (nowMs) at which each stream got `stream.resumed {complete: true}`, unsorted. */
  resumedAt: number[];
  resumedIncomplete: number;
  resets: Record<string, number>;
  /** Accepted events a stream never received, summed over streams; streams with any. */
  lost: number;
  streamsWithLoss: number;
  duplicates: number;
  /** Events received that the publisher never saw accepted (its request failed after the fact). */
  unexpected: number;
  /** Reconnection attempts, by outcome: established, http_429, http_503, ECONNREFUSED, ... */
  attempts: Record<string, number>;
  /** Delay the clients waited before their first reconnection attempt: min / mean / max, ms. */
  firstDelayMs: { min: number; mean: number; max: number };
}

interface Stream {
  index: number;
  socket: Socket | undefined;
  state: 'connecting' | 'open' | 'waiting' | 'closed';
  head: string;
  headDone: boolean;
  chunked: boolean;
  chunkLeft: number;
  sizeLine: string;
  crlfLeft: number;
  rest: string;
  ids: number[];
  lastId: number;
  lastIdText: string;
  /** Consecutive failed attempts: the backoff exponent (reset once a stream is established). */
  failures: number;
  serverRetryMs: number | undefined;
  retryAfterMs: number | undefined;
  reconnecting: boolean;
  resumedAt: number;
  attemptStartedAt: number;
}

interface Config {
  host: string;
  port: number;
  failoverHost: string;
  failoverPort: number;
  streamPath: string;
  tokens: string[];
}

const BASE_MS = 500;
const MAX_MS = 30_000;

let config: Config | undefined;
const streams: Stream[] = [];
const readBuffer = Buffer.allocUnsafe(64 * 1024);
const attempts: Record<string, number> = {};
const resets: Record<string, number> = {};
let resumedIncomplete = 0;
let duplicates = 0;
let received = 0;
let closingAll = false;
const firstDelays: number[] = [];
let onEstablished: ((stream: Stream, outcome: string) => void) | undefined;

function count(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

function backoffDelay(stream: Stream): number {
  const serverRetryMs = Math.max(0, stream.serverRetryMs ?? 0);
  const floor = Math.max(Math.min(serverRetryMs, MAX_MS), stream.retryAfterMs ?? 0);
  const base = Math.max(BASE_MS, serverRetryMs);
  const exponential = base * 2 ** Math.min(stream.failures, 31);
  const window = Math.max(0, Math.min(MAX_MS - floor, exponential));
  return Math.round(floor + Math.random() * window);
}

function attempt(stream: Stream): void {
  if (!config) throw new Error('attempt before init');
  const failover = stream.reconnecting;
  const host = failover ? config.failoverHost : config.host;
  const port = failover ? config.failoverPort : config.port;
  Object.assign(stream, {
    state: 'connecting',
    head: '',
    headDone: false,
    chunked: false,
    chunkLeft: 0,
    sizeLine: '',
    crlfLeft: 0,
    rest: '',
    retryAfterMs: undefined,
    attemptStartedAt: nowMs(),
  });
  const socket: Socket = connect({
    host,
    port,
    noDelay: true,
    onread: { buffer: readBuffer, callback: (length: number): boolean => onRead(stream, socket, length) },
  });
  stream.socket = socket;
  socket.on('error', (error: NodeJS.ErrnoException) => ended(stream, socket, error.code ?? 'socket_error'));
  socket.on('close', () => ended(stream, socket, 'closed'));
  const resume = stream.lastIdText === '' ? '' : `Last-Event-ID: ${stream.lastIdText}\r\n`;
  socket.write(
    `GET ${config.streamPath} HTTP/1.1\r\nHost: ${host}:${port}\r\n` +
      `Authorization: Bearer ${config.tokens[stream.index] ?? ''}\r\nAccept: text/event-stream\r\n${resume}\r\n`,
  );
}

/** The stream's socket ended (or failed, or was refused): back off and reconnect, as the client does. */
function ended(stream: Stream, socket: Socket, outcome: string): void {
  if (stream.socket !== socket || stream.state === 'closed' || stream.state === 'waiting') return;
  const wasOpen = stream.state === 'open';
  socket.destroy();
  stream.socket = undefined;
  if (closingAll) {
    stream.state = 'closed';
    return;
  }
  if (!wasOpen) {
    if (stream.reconnecting) count(attempts, outcome);
    onEstablished?.(stream, outcome);
  }
  stream.state = 'waiting';
  const delay = backoffDelay(stream);
  if (!stream.reconnecting) firstDelays.push(delay);
  stream.reconnecting = true;
  stream.failures++;
  setTimeout(() => attempt(stream), delay);
}

function onRead(stream: Stream, socket: Socket, length: number): boolean {
  if (stream.socket !== socket || stream.state === 'closed' || stream.state === 'waiting') return false;
  let offset = 0;
  if (!stream.headDone) {
    offset = readHead(stream, socket, length);
    if (offset < 0) return false;
  }
  if (!stream.chunked) {
    if (offset < length) onBody(stream, readBuffer.toString('latin1', offset, length));
    return true;
  }
  const { body, end: ending } = decodeChunked(stream, readBuffer, offset, length);
  if (body !== '') onBody(stream, body);
  if (ending === undefined) return true;
  ended(stream, socket, 'ended');
  return false;
}

function readHead(stream: Stream, socket: Socket, length: number): number {
  const before = stream.head.length;
  const text = stream.head + readBuffer.toString('latin1', 0, length);
  const headEnd = text.indexOf('\r\n\r\n');
  if (headEnd === -1) {
    stream.head = text;
    return length;
  }
  const head = text.slice(0, headEnd);
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
  if (status !== 200) {
    // A refusal's Retry-After is a floor for the delay of this very failure (the client's floorMs).
    const retryAfter = Number(/\r\nretry-after:\s*(\d+)/i.exec(head)?.[1]);
    if (Number.isFinite(retryAfter)) stream.retryAfterMs = retryAfter * 1000;
    ended(stream, socket, `http_${status}`);
    return -1;
  }
  stream.chunked = /\r\ntransfer-encoding:[^\r]*chunked/i.test(head);
  stream.head = '';
  stream.headDone = true;
  return headEnd + 4 - before;
}

function onBody(stream: Stream, chunk: string): void {
  const text = stream.rest.length === 0 ? chunk : stream.rest + chunk;
  let start = 0;
  for (;;) {
    const end = text.indexOf('\n\n', start);
    if (end === -1) break;
    onFrame(stream, text.slice(start, end));
    start = end + 2;
  }
  stream.rest = start === text.length ? '' : text.slice(start);
}

function onFrame(stream: Stream, frame: string): void {
  if (frame.startsWith('id: ')) {
    const idEnd = frame.indexOf('\n');
    if (!frame.startsWith('event: notification', idEnd + 1)) return;
    const idText = frame.slice(4, idEnd);
    const id = Number(idText);
    if (!(id > stream.lastId)) {
      duplicates++;
      return;
    }
    stream.lastId = id;
    stream.lastIdText = idText;
    stream.ids.push(id);
    received++;
    return;
  }
  if (frame.startsWith('retry: ')) {
    stream.serverRetryMs = Number(frame.slice(7));
    return;
  }
  if (frame.startsWith('event: connection.established')) {
    if (stream.state === 'connecting') {
      stream.state = 'open';
      stream.failures = 0;
      if (stream.reconnecting) count(attempts, 'established');
      onEstablished?.(stream, 'established');
    }
    return;
  }
  if (frame.startsWith('event: stream.resumed')) {
    const data = JSON.parse(frame.slice(frame.indexOf('data: ') + 6)) as { complete?: boolean };
    if (data.complete === true) {
      if (stream.resumedAt === 0) stream.resumedAt = nowMs();
    } else resumedIncomplete++;
    return;
  }
  if (frame.startsWith('event: stream.reset')) {
    const data = JSON.parse(frame.slice(frame.indexOf('data: ') + 6)) as { reason?: string };
    count(resets, data.reason ?? '?');
  }
}

async function init(command: Extract<StormCommand, { type: 'init' }>): Promise<void> {
  const base = new URL(command.baseUrl);
  const failover = new URL(command.failoverUrl);
  const tokens = await streamTokens(command.secret, command.userOffset, command.count);
  config = {
    host: base.hostname,
    port: Number(base.port),
    failoverHost: failover.hostname,
    failoverPort: Number(failover.port),
    streamPath: command.streamPath,
    tokens,
  };
  for (let index = 0; index < command.count; index++) {
    streams.push({
      index,
      socket: undefined,
      state: 'closed',
      head: '',
      headDone: false,
      chunked: false,
      chunkLeft: 0,
      sizeLine: '',
      crlfLeft: 0,
      rest: '',
      ids: [],
      lastId: -1,
      lastIdText: '',
      failures: 0,
      serverRetryMs: undefined,
      retryAfterMs: undefined,
      reconnecting: false,
      resumedAt: 0,
      attemptStartedAt: 0,
    });
  }
}

/** Opens every stream on the first URL at `ratePerSec`; resolves once each is established or failed. */
function open(command: Extract<StormCommand, { type: 'open' }>): Promise<{ established: number; failed: number }> {
  const started = nowMs();
  let launched = 0;
  let established = 0;
  let failed = 0;
  return new Promise((resolve) => {
    const finish = () => {
      clearTimeout(deadline);
      onEstablished = undefined;
      resolve({ established, failed });
    };
    const deadline = setTimeout(finish, command.timeoutMs);
    onEstablished = (_stream, outcome) => {
      if (outcome === 'established') established++;
      else failed++;
      if (established + failed >= streams.length) finish();
    };
    const launch = () => {
      const due = Math.min(streams.length, Math.floor(((nowMs() - started) * command.ratePerSec) / 1000) + 1);
      while (launched < due) {
        const stream = streams[launched++];
        if (stream) attempt(stream);
      }
      if (launched < streams.length) setTimeout(launch, 1000 / command.ratePerSec);
    };
    launch();
  });
}

function stats(): StormStats {
  let open = 0;
  let withId = 0;
  let resumedComplete = 0;
  let givenUp = 0;
  for (const stream of streams) {
    if (stream.state === 'open') open++;
    if (stream.state === 'closed') givenUp++;
    if (stream.lastId >= 0) withId++;
    if (stream.resumedAt > 0) resumedComplete++;
  }
  return { open, withId, received, resumedComplete, resumedIncomplete, givenUp };
}

/** Per stream, the accepted ids it never received (a merge of two ascending lists). */
function result(acceptedIds: number[]): StormResult {
  const accepted = [...acceptedIds].sort((a, b) => a - b);
  const acceptedSet = new Set(accepted);
  let lost = 0;
  let streamsWithLoss = 0;
  let unexpected = 0;
  for (const stream of streams) {
    let missing = 0;
    let i = 0;
    for (const id of accepted) {
      while (i < stream.ids.length && (stream.ids[i] ?? 0) < id) i++;
      if (stream.ids[i] !== id) missing++;
    }
    for (const id of stream.ids) if (!acceptedSet.has(id)) unexpected++;
    lost += missing;
    if (missing > 0) streamsWithLoss++;
  }
  const resumedAt = streams.filter((stream) => stream.resumedAt > 0).map((stream) => stream.resumedAt);
  const delays = firstDelays.length === 0 ? [0] : firstDelays;
  return {
    resumedAt,
    resumedIncomplete,
    resets,
    lost,
    streamsWithLoss,
    duplicates,
    unexpected,
    attempts,
    firstDelayMs: {
      min: Math.min(...delays),
      mean: delays.reduce((sum, value) => sum + value, 0) / delays.length,
      max: Math.max(...delays),
    },
  };
}

function closeAll(): void {
  closingAll = true;
  for (const stream of streams) {
    stream.socket?.destroy();
    stream.state = 'closed';
  }
}

async function handle(command: StormCommand): Promise<unknown> {
  switch (command.type) {
    case 'init':
      return init(command);
    case 'open':
      return open(command);
    case 'stats':
      return stats();
    case 'result':
      return result(command.acceptedIds);
    case 'closeAll':
      return closeAll();
  }
}

process.on('message', (message: StormCommand) => {
  handle(message).then(
    (value) => process.send?.({ ok: true, value }),
    (error: unknown) => process.send?.({ ok: false, error: error instanceof Error ? error.message : String(error) }),
  );
});
process.on('disconnect', () => {
  closeAll();
  process.exit(0);
});
process.on('SIGTERM', () => {
  closeAll();
  process.exit(0);
});
