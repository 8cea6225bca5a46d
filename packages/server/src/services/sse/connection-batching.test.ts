import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { createServer, get, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventRecord } from '../../core/event-record.js';
import { type CloseReason, SSEConnection } from './connection.js';
import { FrameBatcher } from './frame-batcher.js';
import { controlFrame, sharedEventFrame } from './frame.js';

/**
 * Live frames of one event-loop turn go out as one socket write (frame-batcher.ts), over a real
 * HTTP/1.1 response and a real client: in order, none lost, control frames in their place, and a
 * client that stops reading still cut off at MAX_BUFFERED_BYTES.
 */

function record(id: number, size = 10): EventRecord {
  return {
    id,
    topic: 'doc:1',
    type: 'notification',
    ts: '2026-12-02T10:00:00.000Z',
    payload: { title: `e${id}`, body: 'x'.repeat(size) },
    critical: false,
  };
}

interface Opened {
  connection: SSEConnection;
  socketWrites: () => number;
  closed: Promise<CloseReason>;
  client: IncomingMessage;
  /** Events (and `stream.*` control events) the client parsed, in arrival order. */
  events: EventSourceMessage[];
}

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** `count` streams on one server, each opened live with `options`. */
async function open(
  count: number,
  options: { batcher?: FrameBatcher; maxBufferedBytes?: number; read?: boolean },
): Promise<Opened[]> {
  const responses: ServerResponse[] = [];
  let arrived: () => void = () => undefined;
  const allArrived = new Promise<void>((resolve) => (arrived = resolve));
  server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    response.flushHeaders();
    responses.push(response);
    if (responses.length === count) arrived();
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const clients = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<IncomingMessage>((resolve) => get({ host: '127.0.0.1', port, path: '/', agent: false }, resolve)),
    ),
  );
  await allArrived;
  return responses.map((response, index) => {
    let reason: (value: CloseReason) => void = () => undefined;
    const closed = new Promise<CloseReason>((resolve) => (reason = resolve));
    const connection = new SSEConnection(
      { id: `c${index}`, userId: 'u', ip: '127.0.0.1', topics: ['doc:1'] },
      response,
      {
        maxBufferedBytes: options.maxBufferedBytes ?? 1_048_576,
        ...(options.batcher ? { batcher: options.batcher } : {}),
        onClose: (_connection, why) => reason(why),
      },
    );
    connection.write(controlFrame('heartbeat', { ts: 'start' }));
    connection.goLive();
    const socket = response.socket;
    if (socket === null) throw new Error('no socket');
    let writes = 0;
    const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
    socket.write = ((...args: unknown[]) => {
      writes++;
      return write(...args);
    }) as typeof socket.write;
    const client = clients[index] as IncomingMessage;
    const events: EventSourceMessage[] = [];
    const parser = createParser({ onEvent: (event) => events.push(event) });
    if (options.read === false) client.pause();
    else client.on('data', (chunk: Buffer) => parser.feed(chunk.toString('utf8')));
    return { connection, socketWrites: () => writes, closed, client, events };
  });
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 2_000 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(check()).toBe(true);
}

describe('SSE batching: one write per stream per event-loop turn', () => {
  it('a burst of 500 events in one turn reaches two streams whole and in order, in one shared write each', async () => {
    const batcher = new FrameBatcher();
    const streams = await open(2, { batcher });
    const frames = Array.from({ length: 500 }, (_, i) => ({
      record: record(i + 1),
      frame: sharedEventFrame(record(i + 1)),
    }));
    // The first frame (written through the response, corked until the next tick) is out.
    await new Promise((resolve) => setImmediate(resolve));
    const writesBefore = streams.map((stream) => stream.socketWrites());
    for (const { record: event, frame } of frames)
      for (const stream of streams) stream.connection.deliver(event, frame);
    // Nothing is written before the end of the turn...
    expect(streams.map((stream) => stream.socketWrites())).toEqual(writesBefore);
    await new Promise((resolve) => setImmediate(resolve));
    // ...then exactly one write per stream, of the same joined bytes.
    expect(streams.map((stream, i) => stream.socketWrites() - (writesBefore[i] ?? 0))).toEqual([1, 1]);
    for (const stream of streams) {
      await until(() => stream.events.filter((event) => event.event === 'notification').length === 500);
      expect(stream.events.filter((event) => event.event === 'notification').map((event) => Number(event.id))).toEqual(
        frames.map(({ record: event }) => event.id),
      );
    }
  });

  it('keeps the order of events and control frames written in the same turn; skips ids already sent', async () => {
    const [stream] = await open(1, { batcher: new FrameBatcher() });
    if (!stream) throw new Error('no stream');
    const send = (id: number) => stream.connection.deliver(record(id), sharedEventFrame(record(id)));
    send(1);
    send(2);
    expect(send(2)).toBe(false);
    stream.connection.write(controlFrame('stream.reset', { reason: 'gap' }));
    send(3);
    stream.connection.noticeIsland(3);
    send(4);
    await until(() => stream.events.length === 7);
    expect(stream.events.map((event) => `${event.event}:${event.id ?? ''}`)).toEqual([
      'heartbeat:',
      'notification:1',
      'notification:2',
      'stream.reset:',
      'notification:3',
      'stream.reset:',
      'notification:4',
    ]);
  });

  it('a clean close sends what the turn queued first', async () => {
    const [stream] = await open(1, { batcher: new FrameBatcher() });
    if (!stream) throw new Error('no stream');
    for (const id of [1, 2, 3]) stream.connection.deliver(record(id), sharedEventFrame(record(id)));
    stream.connection.close('shutdown');
    await expect(stream.closed).resolves.toBe('shutdown');
    await new Promise((resolve) => stream.client.once('end', resolve));
    expect(stream.events.filter((event) => event.event === 'notification').map((event) => event.id)).toEqual([
      '1',
      '2',
      '3',
    ]);
  });

  it('a client that stops reading is still cut off as a slow consumer, by a burst within one turn too', async () => {
    const maxBufferedBytes = 64 * 1024;
    const [slow] = await open(1, { batcher: new FrameBatcher(), maxBufferedBytes, read: false });
    if (!slow) throw new Error('no stream');
    // One turn: the queued frames alone pass the bound, before anything reaches the socket.
    for (let id = 1; id <= 200 && !slow.connection.isClosed; id++) {
      slow.connection.deliver(record(id, 1_000), sharedEventFrame(record(id, 1_000)));
    }
    expect(slow.connection.isClosed).toBe(true);
    await expect(slow.closed).resolves.toBe('slow_consumer');
  });

  it('…and over many turns, once the kernel stops taking its bytes', async () => {
    const [slow] = await open(1, { batcher: new FrameBatcher(), maxBufferedBytes: 256 * 1024, read: false });
    if (!slow) throw new Error('no stream');
    let id = 0;
    while (!slow.connection.isClosed && id < 100_000) {
      for (let i = 0; i < 10; i++) {
        id++;
        slow.connection.deliver(record(id, 1_000), sharedEventFrame(record(id, 1_000)));
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    await expect(slow.closed).resolves.toBe('slow_consumer');
  });
});
