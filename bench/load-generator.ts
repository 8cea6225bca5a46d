import { connect, type Socket } from 'node:net';
import { decodeChunked } from './chunked-body.js';
import { freshStreamTokens } from './stream-tokens.js';
import { Histogram, nowMs } from './histogram.js';
import type { LoadCommand, LoadReply, LoadStats, OpenResult } from './ipc.js';

/**
 * One load-generator process (forked by bench/run.ts over IPC, so client CPU is not spent in the
 * orchestrator or the server). It opens SSE streams over plain TCP sockets, one each, measures the
 * connect time (request sent → `connection.established` frame received) and records the delivery
 * latency of every `notification`: receive time − the send time the publisher wrote into the
 * payload title (`b<ms>`). Per stream it checks that event ids strictly increase: with the count
 * of events received, that proves every event arrived exactly once and in order.
 *
 * Why not node:http: reading a frame must cost the client as little as possible, since on this
 * machine the clients share the cores with the servers they measure. node:http runs every read
 * through its parser, a Readable stream and a string decoder; here a socket's bytes land in one
 * buffer shared by every socket (`onread`), and a small parser takes from them only the HTTP
 * status, the chunked framing and, per frame, the `id:` and `event:` lines and the title.
 */

interface Stream {
  socket: Socket;
  state: 'connecting' | 'open' | 'closed';
  /** The response head so far (latin1), until it is complete. */
  head: string;
  headDone: boolean;
  /** `Transfer-Encoding: chunked` (HTTP/1.1); otherwise the body runs until the socket closes. */
  chunked: boolean;
  /** Chunked framing: body bytes left in the current chunk (0: a size line comes next). */
  chunkLeft: number;
  /** Chunked framing: the size line read so far, and the CRLF bytes still to skip after data. */
  sizeLine: string;
  crlfLeft: number;
  /** Body text of an incomplete frame carried over to the next read. */
  rest: string;
  received: number;
  /** Highest event id received (ids strictly increase in publish order). */
  lastId: number;
  startedAt: number;
  /** Set by closeAll: the end is ours, not a disconnect. */
  closing: boolean;
}

interface Target {
  host: string;
  port: number;
  streamPath: string;
  /** A token no stream of this run has sent yet. */
  nextToken: () => string;
  clockOffsetMs: number;
  establishedOnHead: boolean;
}

const TITLE_MARKER = '"title":"b';
const ESTABLISHED_MARKER = 'event: connection.established';
const NOTIFICATION_MARKER = 'event: notification';
const NOTIFICATION_LINE = `${NOTIFICATION_MARKER}\n`;

let target: Target | undefined;
const streams = new Set<Stream>();
const latency = new Histogram();
/** Every read of every socket lands here; it is consumed before the next read. */
const readBuffer = Buffer.allocUnsafe(64 * 1024);
/** When the read being parsed arrived (every frame of one read arrived together). */
let readAt = 0;
let received = 0;
let disconnects = 0;
let orderErrors = 0;
let lastReceivedAt = 0;
let cpuAtReset = process.cpuUsage();

/** Set by an `open` in progress: called whenever a connecting stream settles. */
let onSettled: ((stream: Stream, outcome: string) => void) | undefined;

function send(reply: LoadReply): void {
  process.send?.(reply);
}

function openOne(at: Target): Stream {
  const token = at.nextToken();
  const stream: Stream = {
    socket: connect({
      host: at.host,
      port: at.port,
      noDelay: true,
      onread: { buffer: readBuffer, callback: (length: number) => onRead(stream, length) },
    }),
    state: 'connecting',
    head: '',
    headDone: false,
    chunked: false,
    chunkLeft: 0,
    sizeLine: '',
    crlfLeft: 0,
    rest: '',
    received: 0,
    lastId: -1,
    startedAt: nowMs(),
    closing: false,
  };
  streams.add(stream);
  const { socket } = stream;
  socket.on('end', () => end(stream, 'ended'));
  socket.on('error', (error: NodeJS.ErrnoException) => end(stream, error.code ?? 'socket_error'));
  socket.on('close', () => end(stream, 'closed'));
  socket.write(
    `GET ${at.streamPath} HTTP/1.1\r\nHost: ${at.host}:${at.port}\r\nAuthorization: Bearer ${token}\r\n` +
      'Accept: text/event-stream\r\n\r\n',
  );
  return stream;
}

/** `onread` callback: `length` new bytes of the stream's socket are at the start of readBuffer. */
function onRead(stream: Stream, length: number): boolean {
  if (stream.state === 'closed') return false;
  readAt = nowMs();
  let offset = 0;
  if (!stream.headDone) {
    offset = readHead(stream, length);
    if (offset < 0) return false;
  }
  if (!stream.chunked) {
    if (offset < length) onBody(stream, readBuffer.toString('latin1', offset, length));
    return true;
  }
  const { body, end: ending } = decodeChunked(stream, readBuffer, offset, length);
  if (body !== '') onBody(stream, body);
  if (ending === undefined) return true;
  end(stream, ending);
  return false;
}

/**
 * Reads the response head; returns where the body starts in readBuffer (`length` if the head is
 * not complete yet), or -1 when the stream ended (not a 200).
 */
function readHead(stream: Stream, length: number): number {
  const before = stream.head.length;
  const text = stream.head + readBuffer.toString('latin1', 0, length);
  const headEnd = text.indexOf('\r\n\r\n');
  if (headEnd === -1) {
    stream.head = text;
    return length;
  }
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
  if (status !== 200) {
    end(stream, `http_${status}`);
    return -1;
  }
  stream.chunked = /\r\ntransfer-encoding:[^\r]*chunked/i.test(text.slice(0, headEnd));
  stream.head = '';
  stream.headDone = true;
  if (target?.establishedOnHead === true && stream.state === 'connecting') {
    stream.state = 'open';
    onSettled?.(stream, 'established');
  }
  // The head may have begun in earlier reads: the body starts this far into this one.
  return headEnd + 4 - before;
}

function onBody(stream: Stream, chunk: string): void {
  const text = stream.rest.length === 0 ? chunk : stream.rest + chunk;
  let start = 0;
  for (;;) {
    const end = text.indexOf('\n\n', start);
    if (end === -1) break;
    onFrame(stream, text, start, end);
    start = end + 2;
  }
  stream.rest = start === text.length ? '' : text.slice(start);
}

/** One frame: `text` from `start` to `end` (exclusive), without its blank line. */
function onFrame(stream: Stream, text: string, start: number, end: number): void {
  // `id:` then `event:` (ours, minimal), or `event:` then `id:` (Nchan).
  let idAt = -1;
  let eventAt = -1;
  if (text.startsWith('id: ', start)) {
    const lineEnd = text.indexOf('\n', start);
    if (lineEnd === -1 || lineEnd > end) return;
    idAt = start;
    eventAt = lineEnd + 1;
  } else if (text.startsWith(NOTIFICATION_LINE, start)) {
    eventAt = start;
    idAt = start + NOTIFICATION_LINE.length;
    if (!text.startsWith('id: ', idAt)) idAt = -1;
  }
  if (idAt !== -1) {
    const idEnd = text.indexOf('\n', idAt);
    if (idEnd === -1 || idEnd > end || !text.startsWith(NOTIFICATION_MARKER, eventAt)) return;
    const id = eventId(text.slice(idAt + 4, idEnd));
    if (!(id > stream.lastId)) orderErrors++;
    else stream.lastId = id;
    stream.received++;
    received++;
    const titleAt = text.indexOf(TITLE_MARKER, eventAt);
    if (titleAt === -1 || titleAt > end) return;
    const from = titleAt + TITLE_MARKER.length;
    const sentAt = Number(text.slice(from, text.indexOf('"', from)));
    const receivedAt = readAt - (target?.clockOffsetMs ?? 0);
    if (Number.isFinite(sentAt)) latency.record(Math.max(0, receivedAt - sentAt));
    lastReceivedAt = receivedAt;
  } else if (stream.state === 'connecting' && text.startsWith(ESTABLISHED_MARKER, start)) {
    stream.state = 'open';
    onSettled?.(stream, 'established');
  }
}

/**
 * A frame's id as a number that increases with the stream: ours and the minimal server's are
 * integers; Nchan's are `<unix seconds>:<n-th message of that second>`.
 */
function eventId(text: string): number {
  const colon = text.indexOf(':');
  if (colon === -1) return Number(text);
  return Number(text.slice(0, colon)) * 1_000_000 + Number(text.slice(colon + 1));
}

function end(stream: Stream, reason: string): void {
  if (stream.state === 'closed') return;
  const wasConnecting = stream.state === 'connecting';
  stream.state = 'closed';
  streams.delete(stream);
  stream.socket.destroy();
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
    orderErrors,
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
  orderErrors = 0;
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
  target = {
    host: url.hostname,
    port: Number(url.port),
    streamPath: command.streamPath,
    nextToken: freshStreamTokens(command.secret, command.generator),
    clockOffsetMs: command.clockOffsetMs,
    establishedOnHead: command.establishedOnHead === true,
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
// stopChild's SIGTERM: exit normally, so that a --cpu-prof profile gets written.
process.on('SIGTERM', () => {
  closeAll();
  process.exit(0);
});
