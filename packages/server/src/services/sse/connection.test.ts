import { createServer, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventRecord } from '../../core/event-record.js';
import { SSEConnection } from './connection.js';
import { sharedEventFrame } from './frame.js';

function record(id: number, title = `t${id}`): EventRecord {
  return {
    id,
    topic: 'broadcast',
    type: 'notification',
    ts: '2026-12-02T10:00:00.000Z',
    payload: { title, level: 'info' },
    critical: false,
  };
}

/** A real HTTP server whose one response becomes an SSEConnection; the client is a raw socket. */
async function openConnection(options: { hold?: boolean } = {}): Promise<{
  connection: SSEConnection;
  client: Socket;
  received: () => string;
  writes: () => number;
  server: Server;
}> {
  let resolveResponse: (response: ServerResponse) => void = () => undefined;
  const responded = new Promise<ServerResponse>((resolve) => (resolveResponse = resolve));
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    resolveResponse(response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const client = connect(address.port, '127.0.0.1');
  let text = '';
  client.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  const response = await responded;
  const connection = new SSEConnection({ id: 'c1', userId: 'u1', ip: '127.0.0.1', topics: ['broadcast'] }, response, {
    maxBufferedBytes: 1 << 20,
    onClose: () => undefined,
  });
  if (options.hold === true) connection.holdWrites();
  connection.write(': open\n\n');
  // Every write the socket hands to the kernel (one system call each): _write, or _writev for
  // what piled up while it was busy or corked.
  const socket = response.socket as unknown as Record<'_write' | '_writev', (...args: unknown[]) => void> | null;
  if (socket === null) throw new Error('no socket');
  let writes = 0;
  for (const method of ['_write', '_writev'] as const) {
    const original = socket[method].bind(socket);
    socket[method] = (...args: unknown[]) => {
      writes++;
      original(...args);
    };
  }
  // Let the headers and the first frame go out first (unless held).
  if (options.hold !== true) await until(() => text.includes(': open'));
  return { connection, client, received: () => text, writes: () => writes, server };
}

async function until(predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !predicate(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(predicate()).toBe(true);
}

const open: { client: Socket; server: Server }[] = [];
afterEach(async () => {
  for (const { client, server } of open.splice(0)) {
    client.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('SSEConnection.replayBatch', () => {
  it('writes a run of replayed events in one write, in order, each once, skipping what was already sent', async () => {
    const opened = await openConnection();
    open.push(opened);
    const { connection, received, writes } = opened;
    connection.skipThrough(2);
    const batch = [1, 2, 3, 4, 5, 6].map((id) => ({ record: record(id), frame: sharedEventFrame(record(id)) }));
    const before = writes();
    expect(await connection.replayBatch(batch)).toBe(4);
    expect(writes() - before).toBe(1);
    // Replayed again (a replan after a resync): nothing goes out twice.
    expect(await connection.replayBatch(batch)).toBe(0);
    connection.goLive();
    expect(connection.deliver(record(7), sharedEventFrame(record(7)))).toBe(true);
    await until(() => received().includes('id: 7'));
    const ids = [...received().matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]));
    expect(ids).toEqual([3, 4, 5, 6, 7]);
  });

  it('writes an island notice before the event that carries it, once', async () => {
    const opened = await openConnection();
    open.push(opened);
    const { connection, received } = opened;
    const islanded = (id: number) => ({ ...record(id), island: 100 });
    const batch = [record(1), islanded(2), islanded(3)].map((r) => ({ record: r, frame: sharedEventFrame(r) }));
    expect(await connection.replayBatch(batch)).toBe(3);
    connection.goLive();
    await until(() => received().includes('id: 3'));
    const body = received();
    expect(body.split('event: stream.reset').length - 1).toBe(1);
    expect(body.indexOf('id: 1')).toBeLessThan(body.indexOf('event: stream.reset'));
    expect(body.indexOf('event: stream.reset')).toBeLessThan(body.indexOf('id: 2'));
  });

  it('tells the loss of an island event below where the stream stands, once', async () => {
    const opened = await openConnection();
    open.push(opened);
    const { connection, received } = opened;
    // Resumed here from an id another island issued, above this island's next ones.
    connection.skipThrough(50);
    connection.goLive();
    const islanded = (id: number) => ({ ...record(id), island: 10 });
    expect(connection.deliver(islanded(20), sharedEventFrame(islanded(20)))).toBe(false);
    expect(connection.deliver(islanded(30), sharedEventFrame(islanded(30)))).toBe(false);
    expect(connection.deliver(record(60), sharedEventFrame(record(60)))).toBe(true);
    await until(() => received().includes('id: 60'));
    const body = received();
    expect(body.split('event: stream.reset').length - 1).toBe(1);
    expect(body).toContain('"since":"10"');
    expect([...body.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]))).toEqual([60]);
  });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('SSEConnection.holdWrites', () => {
  it("holds a resume's frames and sends them, headers included, in one write when released", async () => {
    const opened = await openConnection({ hold: true });
    open.push(opened);
    const { connection, received, writes } = opened;
    const batch = [1, 2, 3].map((id) => ({ record: record(id), frame: sharedEventFrame(record(id)) }));
    expect(await connection.replayBatch(batch)).toBe(3);
    connection.write('event: stream.resumed\ndata: {}\n\n');
    await sleep(50);
    expect(received()).toBe('');
    connection.releaseWrites();
    await until(() => received().includes('stream.resumed'));
    expect(writes()).toBe(1);
    const body = received();
    expect(body.startsWith('HTTP/1.1 200')).toBe(true);
    expect([...body.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]))).toEqual([1, 2, 3]);
    expect(body.indexOf(': open')).toBeLessThan(body.indexOf('id: 1'));
    expect(body.indexOf('id: 3')).toBeLessThan(body.indexOf('stream.resumed'));
  });

  it('lets a replay larger than the socket buffer out instead of waiting on the held socket forever', async () => {
    const opened = await openConnection({ hold: true });
    open.push(opened);
    const { connection, received } = opened;
    const big = 'x'.repeat(2_000);
    const batch = Array.from({ length: 100 }, (_, index) => {
      const event = record(index + 1, big);
      return { record: event, frame: sharedEventFrame(event) };
    });
    expect(await connection.replayBatch(batch)).toBe(100);
    await until(() => received().includes('id: 100'));
  });

  it('sends what it held when the stream ends', async () => {
    const opened = await openConnection({ hold: true });
    open.push(opened);
    const { connection, received } = opened;
    connection.write('event: stream.reset\ndata: {}\n\n');
    connection.close('shutdown');
    await until(() => received().includes('stream.reset') && received().endsWith('0\r\n\r\n'));
  });
});
