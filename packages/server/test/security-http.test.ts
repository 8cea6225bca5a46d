/**
 * Security regression suite, the HTTP surface (issue 11, item 12): slow bodies time out without
 * touching streams, long-polls and tickets are bounded, HEAD answers properly, cookies do not
 * work cross-site, forwarded addresses are believed only as far as configured, nothing internal
 * leaks in 5xx and /readyz answers, every framework-level error has the API's shape, and line
 * separators cannot split a `data:` line.
 */
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryTicketStore } from '../src/adapters/auth/memory-ticket-store.js';
import { RedisTicketStore } from '../src/adapters/auth/redis-ticket-store.js';
import { MemoryEventBus } from '../src/adapters/bus/memory-event-bus.js';
import { parseConfig } from '../../../apps/backend/src/config.js';
import type { EventDraft, EventRecord } from '../src/core/event-record.js';
import { createLogger } from '../src/adapters/observability/logger.js';
import { PgliteEventStore } from '../src/adapters/store/pglite-event-store.js';
import { expectJsonError } from './helpers/http-assertions.js';
import { rawRequest } from './helpers/raw-http.js';
import { ofType, openStream, published } from './helpers/sse-reader.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

const portOf = (server: TestApp) => Number(new URL(server.url).port);

function expectErrorShape(body: string, code: string): void {
  const parsed = JSON.parse(body) as { error: { code: string; message: string } };
  expect(Object.keys(parsed)).toEqual(['error']);
  expect(parsed.error).toEqual({ code, message: expect.any(String) });
}

describe('security: the HTTP surface', () => {
  let server: TestApp;

  beforeAll(async () => {
    server = await startTestApp({
      REQUEST_TIMEOUT_MS: '1000',
      MAX_CONNECTIONS_PER_USER: '2',
      TICKET_RATE_MAX: '3',
      CORS_ORIGINS: 'https://app.example.com',
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers a request whose body never finishes 408 request_timeout, and closes it', async () => {
    const answer = await rawRequest(
      portOf(server),
      'POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"to',
      { waitMs: 5_000 },
    );
    expect(answer.closed).toBe(true);
    expect(answer.status).toBe(408);
    expectErrorShape(answer.body, 'request_timeout');
  });

  it('does not cut streams or long-polls, whose requests are complete at once', async () => {
    const token = await server.token('long-lived');
    const stream = await openStream(server.url, { token });
    try {
      await stream.waitFor((events) => events.some((event) => event.event === 'connection.established'));
      const poll = fetch(`${server.url}/api/sse/poll?timeoutMs=2500`, {
        headers: { authorization: `Bearer ${token}` },
      });
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      const { id } = await server.publish({ topic: 'user:long-lived' });
      await stream.waitFor((events) => published(events).some((event) => event.id === id));
      expect((await poll).status).toBe(200);
    } finally {
      stream.close();
    }
  });

  it('counts waiting long-polls against the per-user connection limit (429 past it)', async () => {
    const token = await server.token('poller');
    const abort = new AbortController();
    const poll = () =>
      fetch(`${server.url}/api/sse/poll?timeoutMs=10000`, {
        headers: { authorization: `Bearer ${token}` },
        signal: abort.signal,
      });
    const waiting = [poll().catch(() => undefined), poll().catch(() => undefined)];
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      await expectJsonError(await poll(), 429, 'too_many_connections');
      const stream = await fetch(`${server.url}/api/sse/stream`, { headers: { authorization: `Bearer ${token}` } });
      await expectJsonError(stream, 429, 'too_many_connections');
    } finally {
      abort.abort();
      await Promise.all(waiting);
    }
  });

  it('throttles ticket issuance per user (429 with Retry-After)', async () => {
    const token = await server.token('ticket-hoarder');
    const issue = () =>
      fetch(`${server.url}/api/sse/ticket`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    for (let index = 0; index < 3; index++) expect((await issue()).status).toBe(200);
    const refused = await issue();
    await expectJsonError(refused, 429, 'rate_limited');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const other = await server.token('ticket-other');
    const answer = await fetch(`${server.url}/api/sse/ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${other}` },
    });
    expect(answer.status).toBe(200);
  });

  it('answers HEAD /api/sse/stream with a status line and the stream’s headers, no body, no stream', async () => {
    const token = await server.token('head-user');
    const answer = await rawRequest(
      portOf(server),
      `HEAD /api/sse/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n` +
        // Keep-alive: a second request on the same connection is answered too.
        'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    expect(answer.raw.startsWith('HTTP/1.1 200 OK\r\n')).toBe(true);
    expect(answer.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(answer.raw).not.toMatch(/retry:|event:|data:/);
    expect(answer.body).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    const refused = await rawRequest(
      portOf(server),
      'HEAD /api/sse/stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    expect(refused.status).toBe(401);
    expect(refused.body).toBe('');
  });

  it('refuses cookie-authenticated POSTs from other sites; Bearer, same-site and allowed origins still work', async () => {
    const token = await server.token('cookie-user');
    const post = (headers: Record<string, string>) =>
      fetch(`${server.url}/api/tasks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ kind: 'demo', input: { stages: 1, stageMs: 10 } }),
      });
    const cookie = { cookie: `access_token=${token}` };
    for (const crossSite of <Record<string, string>[]>[
      { origin: 'https://evil.example' },
      { origin: 'null' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
    ]) {
      await expectJsonError(await post({ ...cookie, ...crossSite }), 403, 'forbidden');
    }
    for (const fine of <Record<string, string>[]>[
      { origin: server.url },
      { origin: 'https://app.example.com' },
      { 'sec-fetch-site': 'same-origin' },
      {},
    ]) {
      expect((await post({ ...cookie, ...fine })).status, JSON.stringify(fine)).toBe(202);
    }
    expect((await post({ authorization: `Bearer ${token}`, origin: 'https://evil.example' })).status).toBe(202);
    // Reading is not changing anything: a cookie stream from anywhere is still a stream (CORS guards reading it).
    const stream = await openStream(server.url, { headers: { ...cookie, origin: 'https://evil.example' } });
    expect(stream.status).toBe(200);
    stream.close();
  });

  it('does not show the host name as the instance id', async () => {
    const stream = await openStream(server.url, { token: await server.token('whoami') });
    try {
      await stream.waitFor((events) => events.some((event) => event.event === 'connection.established'));
      const [established] = ofType<{ instanceId: string }>(stream.events, 'connection.established');
      expect(established?.instanceId).toMatch(/^instance-[0-9a-f]{12}$/);
      expect(established?.instanceId).not.toContain(hostname());
    } finally {
      stream.close();
    }
  });

  it.each([
    [
      'bad framing (Content-Length and chunked)',
      'POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc',
      400,
      'invalid_request',
    ],
    ['a request line that is not HTTP', 'HELLO THERE\r\n\r\n', 400, 'invalid_request'],
    ['a header without a colon', 'GET /healthz HTTP/1.1\r\nHost: x\r\nbroken header\r\n\r\n', 400, 'invalid_request'],
    [
      'a URL that does not decode',
      'GET /api/tasks/%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      400,
      'invalid_request',
    ],
    [
      'a path parameter over its limit',
      `GET /api/tasks/${'t'.repeat(300)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      414,
      'url_too_long',
    ],
    [
      'oversized headers',
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`,
      431,
      'headers_too_large',
    ],
    ['an oversized URL', `GET /healthz?${'q'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431, 'headers_too_large'],
  ])('answers %s with the API error shape', async (_label, request, status, code) => {
    const answer = await rawRequest(portOf(server), request);
    expect(answer.status).toBe(status);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expectErrorShape(answer.body, code);
  });

  it('escapes U+2028 and U+2029 in data: lines (the payload still reads back the same)', async () => {
    const stream = await openStream(server.url, { token: await server.token('separators') });
    try {
      await stream.waitFor((events) => events.some((event) => event.event === 'connection.established'));
      const title = 'line\u2028separator\u2029paragraph';
      const { id } = await server.publish({ topic: 'user:separators', payload: { title, level: 'info' } });
      await stream.waitFor((events) => published(events).some((event) => event.id === id));
      expect(stream.raw()).not.toMatch(/[\u2028\u2029]/);
      expect(stream.raw()).toContain('line\\u2028separator\\u2029paragraph');
      const [event] = published(stream.events);
      expect((JSON.parse(event?.data ?? '{}') as { payload: { title: string } }).payload.title).toBe(title);
    } finally {
      stream.close();
    }
  });
});

describe('security: 503 answers and /readyz say what failed, not how', () => {
  it('keeps raw errors and internal addresses out of /readyz (they go to the log)', async () => {
    const lines: string[] = [];
    const server = await startTestApp(
      {},
      {
        logger: createLogger({ level: 'warn', destination: { write: (line: string) => void lines.push(line) } }),
        // A store whose health check fails with a raw driver error naming an internal address.
        store: new (class extends PgliteEventStore {
          override async health(): Promise<never> {
            throw new Error('connect ECONNREFUSED 10.1.2.3:5432');
          }
        })(),
      },
    );
    try {
      const response = await fetch(`${server.url}/readyz`);
      const text = await response.text();
      expect(JSON.parse(text)).toMatchObject({ store: { status: 'down' } });
      expect(text).not.toMatch(/10\.1\.2\.3|ECONNREFUSED/);
      expect(lines.join('\n')).toContain('10.1.2.3:5432');
    } finally {
      await server.close();
    }
  });

  it('a bus failure answers 503 bus_unavailable without the raw error (it is logged)', async () => {
    const lines: string[] = [];
    const bus = new (class extends MemoryEventBus {
      override async publish(draft: EventDraft): Promise<EventRecord> {
        if (draft.type === 'notification') throw new Error('connect ECONNREFUSED 10.9.8.7:6379');
        return super.publish(draft);
      }
    })({ maxEvents: 100, maxAgeMs: 60_000 });
    const server = await startTestApp(
      {},
      { bus, logger: createLogger({ level: 'warn', destination: { write: (line: string) => void lines.push(line) } }) },
    );
    try {
      const response = await fetch(`${server.url}/api/events`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${await server.token('p', { scope: 'events:publish' })}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ topic: 'user:u1', type: 'notification', payload: { title: 't', level: 'info' } }),
      });
      const body = await expectJsonError(response, 503, 'bus_unavailable');
      expect(JSON.stringify(body)).not.toMatch(/10\.9\.8\.7|ECONNREFUSED/);
      expect(lines.join('\n')).toContain('10.9.8.7:6379');
    } finally {
      await server.close();
    }
  });

  it('POST /api/sse/ticket answers 503 (not 500) while Redis is down', async () => {
    const tickets = new RedisTicketStore({
      url: 'redis://127.0.0.1:1',
      commandTimeoutMs: 500,
      redisOptions: { retryStrategy: () => null, maxRetriesPerRequest: 0 },
    });
    const server = await startTestApp({}, { tickets });
    try {
      const response = await fetch(`${server.url}/api/sse/ticket`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await server.token('u1')}` },
      });
      await expectJsonError(response, 503, 'bus_unavailable');
      expect(response.headers.get('retry-after')).not.toBeNull();
      const stream = await fetch(`${server.url}/api/sse/stream?ticket=${'A'.repeat(32)}`);
      await expectJsonError(stream, 503, 'bus_unavailable');
    } finally {
      await server.close();
    }
  });

  it('bounds the tickets held in memory at once', async () => {
    const tickets = new MemoryTicketStore(Date.now, 2);
    try {
      const principal = { userId: 'u', topics: [], scopes: [], expiresAt: Date.now() + 60_000 };
      await tickets.issue(principal, 30_000);
      await tickets.issue(principal, 30_000);
      await expect(tickets.issue(principal, 30_000)).rejects.toMatchObject({ code: 'rate_limited' });
    } finally {
      await tickets.close();
    }
  });
});

describe('security: TRUST_PROXY believes only the hops it is told to', () => {
  it('refuses `true`, and takes a hop count or addresses/CIDRs', () => {
    expect(() => parseConfig({ TRUST_PROXY: 'true' })).toThrow(/TRUST_PROXY: true would trust any X-Forwarded-For/);
    expect(() => parseConfig({ TRUST_PROXY: '10.0.0.0/33,nonsense' })).toThrow(/TRUST_PROXY: not an address/);
    expect(parseConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(parseConfig({ TRUST_PROXY: '10.0.0.0/8, loopback,::1' }).trustProxy).toEqual([
      '10.0.0.0/8',
      'loopback',
      '::1',
    ]);
    expect(parseConfig({}).trustProxy).toBe(false);
  });

  it.each([['1'], ['127.0.0.1/32']])(
    'TRUST_PROXY=%s: a client cannot pick its address by writing X-Forwarded-For itself',
    async (trustProxy) => {
      const server = await startTestApp({ TRUST_PROXY: trustProxy, MAX_CONNECTIONS_PER_IP: '1' });
      try {
        // The proxy (127.0.0.1 here) appended the real client, 9.9.9.9; the entries before it are the client's own.
        const open = async (forged: string, user: string) =>
          openStream(server.url, {
            token: await server.token(user),
            headers: { 'x-forwarded-for': `${forged}, 9.9.9.9` },
          });
        const first = await open('1.1.1.1', 'xff-a');
        try {
          expect(first.status).toBe(200);
          const second = await open('2.2.2.2', 'xff-b');
          expect(second.status).toBe(429);
          second.close();
        } finally {
          first.close();
        }
      } finally {
        await server.close();
      }
    },
  );
});
