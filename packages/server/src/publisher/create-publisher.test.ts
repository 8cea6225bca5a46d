import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createPublisher, parseRetryAfter } from './create-publisher.js';
import { PublishError } from './publish-error.js';

interface Seen {
  key: string | undefined;
  authorization: string | undefined;
  body: unknown;
}

type Step = (request: IncomingMessage, response: ServerResponse) => void;

/** A server answering its n-th request with `steps[n]` (the last step repeats), recording each request. */
async function scriptedServer(steps: Step[]): Promise<{ url: string; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  const server = createServer((request, response) => {
    let text = '';
    request.on('data', (chunk: Buffer) => (text += chunk.toString()));
    request.on('end', () => {
      seen.push({
        key: request.headers['idempotency-key'] as string | undefined,
        authorization: request.headers.authorization,
        body: JSON.parse(text),
      });
      const step = steps[Math.min(seen.length - 1, steps.length - 1)];
      step?.(request, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

const json =
  (status: number, body: unknown, headers: Record<string, string> = {}): Step =>
  (_request, response) => {
    response.writeHead(status, { 'content-type': 'application/json', ...headers });
    response.end(JSON.stringify(body));
  };
const error = (status: number, code: string, headers: Record<string, string> = {}) =>
  json(status, { error: { code, message: `${code} happened` } }, headers);
const drop: Step = (request) => request.socket.destroy();

const notification = { topic: 'user:u1', type: 'notification', payload: { title: 'Hi', level: 'info' } } as const;
const fast = { baseDelayMs: 1, maxDelayMs: 5, random: () => 0 };

describe('createPublisher', () => {
  it('publishes with the bearer token and an idempotency key, and resolves with the id', async () => {
    const { url, seen } = await scriptedServer([json(202, { id: '42' })]);
    const publisher = createPublisher({ baseUrl: url, token: 'service-token', ...fast });
    await expect(publisher.publish(notification)).resolves.toEqual({ id: '42' });
    expect(seen).toHaveLength(1);
    expect(seen[0]?.authorization).toBe('Bearer service-token');
    expect(seen[0]?.key).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen[0]?.body).toEqual(notification);
  });

  it('retries a dropped connection and 503/429 with the same key, then resolves with the first event’s id', async () => {
    const { url, seen } = await scriptedServer([
      drop,
      error(503, 'store_unavailable', { 'retry-after': '0' }),
      error(429, 'rate_limited'),
      json(201, { id: '7' }),
    ]);
    const publisher = createPublisher({ baseUrl: url, token: 't', ...fast });
    await expect(publisher.publish({ ...notification, critical: true })).resolves.toEqual({ id: '7' });
    expect(seen).toHaveLength(4);
    expect(new Set(seen.map((request) => request.key)).size).toBe(1);
  });

  it('gives a new publish a new key, and uses the caller’s key when given', async () => {
    const { url, seen } = await scriptedServer([json(202, { id: '1' })]);
    const publisher = createPublisher({ baseUrl: url, token: 't', ...fast });
    await publisher.publish(notification);
    await publisher.publish(notification);
    await publisher.publish({ ...notification, idempotencyKey: 'order-17:shipped' });
    expect(seen[0]?.key).not.toBe(seen[1]?.key);
    expect(seen[2]?.key).toBe('order-17:shipped');
    expect(seen[2]?.body).toEqual(notification);
  });

  it('does not retry what a retry cannot change, and rejects with the API’s code and status', async () => {
    const { url, seen } = await scriptedServer([error(403, 'forbidden_type')]);
    const publisher = createPublisher({ baseUrl: url, token: 't', ...fast });
    const failure = await publisher.publish(notification).catch((caught: unknown) => caught);
    expect(failure).toBeInstanceOf(PublishError);
    expect(failure).toMatchObject({ code: 'forbidden_type', status: 403, message: 'forbidden_type happened' });
    expect(seen).toHaveLength(1);
  });

  it('stops after `retries` and rejects with the last answer', async () => {
    const { url, seen } = await scriptedServer([error(503, 'bus_unavailable')]);
    const publisher = createPublisher({ baseUrl: url, token: 't', retries: 2, ...fast });
    await expect(publisher.publish(notification)).rejects.toMatchObject({ code: 'bus_unavailable', status: 503 });
    expect(seen).toHaveLength(3);
  });

  it('abandons a try that does not answer within timeoutMs and retries it', async () => {
    const { url, seen } = await scriptedServer([() => undefined, json(202, { id: '9' })]);
    const publisher = createPublisher({ baseUrl: url, token: 't', timeoutMs: 100, ...fast });
    await expect(publisher.publish(notification)).resolves.toEqual({ id: '9' });
    expect(seen).toHaveLength(2);
    expect(seen[0]?.key).toBe(seen[1]?.key);
  });

  it('reports an unreachable server as network_error once retries are spent', async () => {
    const { url, server } = await scriptedServer([json(202, { id: '1' })]);
    await new Promise((resolve) => server.close(resolve));
    const publisher = createPublisher({ baseUrl: url, token: 't', retries: 1, ...fast });
    await expect(publisher.publish(notification)).rejects.toMatchObject({ code: 'network_error', status: undefined });
  });

  it('asks a token function on every try, and stops at once when aborted', async () => {
    const { url, seen } = await scriptedServer([error(503, 'store_unavailable', { 'retry-after': '30' })]);
    let asked = 0;
    const publisher = createPublisher({ baseUrl: url, token: () => `t${++asked}`, ...fast });
    const controller = new AbortController();
    const publishing = publisher.publish(notification, { signal: controller.signal });
    await expect.poll(() => seen.length).toBe(1);
    controller.abort();
    await expect(publishing).rejects.toMatchObject({ code: 'aborted' });
    expect(seen[0]?.authorization).toBe('Bearer t1');
  });

  it('keeps a path prefix of the base URL', async () => {
    const { url } = await scriptedServer([
      (request, response) => {
        response.writeHead(request.url === '/realtime/api/events' ? 202 : 404, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ id: request.url }));
      },
    ]);
    const publisher = createPublisher({ baseUrl: `${url}/realtime`, token: 't', ...fast });
    await expect(publisher.publish(notification)).resolves.toEqual({ id: '/realtime/api/events' });
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates, and ignores what it cannot read', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter('Wed, 02 Dec 2026 10:00:05 GMT', Date.parse('2026-12-02T10:00:00Z'))).toBe(5000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

describe('publisher types', () => {
  it('types the built-in notification and the host’s own types, and refuses anything else', () => {
    type AppEvents = { 'comment.added': { docId: string; text: string } };
    const publisher = createPublisher<AppEvents>({ baseUrl: 'http://127.0.0.1:9', token: 't' });
    const check = () => {
      void publisher.publish({ topic: 'doc:1', type: 'comment.added', payload: { docId: '1', text: 'hi' } });
      void publisher.publish({ topic: 'user:u1', type: 'notification', payload: { title: 'Hi', level: 'info' } });
      // @ts-expect-error a payload that is not the type's
      void publisher.publish({ topic: 'doc:1', type: 'comment.added', payload: { docId: 1 } });
      // @ts-expect-error a type nobody registered
      void publisher.publish({ topic: 'doc:1', type: 'comment.removed', payload: {} });
      // @ts-expect-error server-emitted types are not publishable
      void publisher.publish({ topic: 'user:u1', type: 'task.completed', payload: { taskId: 't' } });
    };
    expect(typeof check).toBe('function');
  });
});
