import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

/**
 * The floor: the least a Node process can do to serve SSE. A Set of open responses, one
 * pre-serialized frame per published event written to each of them, no auth, no framework.
 * Run as its own process by bench/run.ts; prints `READY <url>` once listening.
 *
 *   GET  /stream   → SSE headers, `retry:` + `connection.established`, then every published frame
 *   POST /publish  → `{topic, type, payload}` → 202 `{id}` after writing the frame to every stream
 *   GET  /stats    → `{connections, heapUsed}`
 */

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
} as const;

const MAX_BODY_BYTES = 64 * 1024;

const streams = new Set<ServerResponse>();
let nextEventId = 0;
let nextConnectionId = 0;

function openStream(response: ServerResponse): void {
  response.writeHead(200, SSE_HEADERS);
  streams.add(response);
  response.once('close', () => streams.delete(response));
  const connectionId = String(++nextConnectionId);
  response.write(
    `retry: 2000\n\nevent: connection.established\ndata: ${JSON.stringify({ connectionId, topics: ['broadcast'] })}\n\n`,
  );
}

function publish(request: IncomingMessage, response: ServerResponse): void {
  const chunks: Buffer[] = [];
  let size = 0;
  request.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  });
  request.on('end', () => {
    const body = parseBody(size <= MAX_BODY_BYTES ? Buffer.concat(chunks).toString('utf8') : '');
    if (!body) {
      response.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"code":"invalid_event"}}');
      return;
    }
    const id = String(++nextEventId);
    const envelope = { topic: body.topic, type: body.type, ts: new Date().toISOString(), payload: body.payload };
    const frame = Buffer.from(`id: ${id}\nevent: ${body.type}\ndata: ${JSON.stringify(envelope)}\n\n`);
    for (const stream of streams) stream.write(frame);
    response.writeHead(202, { 'content-type': 'application/json' }).end(`{"id":"${id}"}`);
  });
}

function parseBody(text: string): { topic: string; type: string; payload: unknown } | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null) return undefined;
    const { topic, type, payload } = value as Record<string, unknown>;
    if (typeof topic !== 'string' || typeof type !== 'string') return undefined;
    return { topic, type, payload };
  } catch {
    return undefined;
  }
}

const server = createServer((request, response) => {
  const path = (request.url ?? '/').split('?')[0];
  if (request.method === 'GET' && path === '/stream') return openStream(response);
  if (request.method === 'POST' && path === '/publish') return publish(request, response);
  if (request.method === 'GET' && path === '/stats') {
    const body = { connections: streams.size, heapUsed: process.memoryUsage().heapUsed };
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    return;
  }
  response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"not_found"}}');
});
// The publisher keeps its sockets alive between phases; do not close them under it.
server.keepAliveTimeout = 120_000;

function stop(): void {
  for (const stream of streams) stream.end();
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2_000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

server.listen(Number(process.env['PORT'] ?? 0), '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('unexpected listen address');
  console.log(`READY http://127.0.0.1:${address.port}`);
});
