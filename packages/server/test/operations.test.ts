import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../apps/backend/src/config.js';
import { ofType, openStream, published, type StreamReader } from './helpers/sse-reader.js';
import { configProblems as problemsOf } from './helpers/config-problems.js';
import { expectJsonError } from './helpers/http-assertions.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

/** Every metric docs/http-api.md promises, with its Prometheus type. */
const REQUIRED_METRICS = {
  sse_connections_active: 'gauge',
  sse_connections_total: 'counter',
  sse_events_published_total: 'counter',
  sse_events_delivered_total: 'counter',
  sse_event_delivery_latency_seconds: 'histogram',
  sse_replayed_events_total: 'counter',
  sse_errors_total: 'counter',
  sse_stream_resets_total: 'counter',
  ai_generation_time_to_first_token_seconds: 'histogram',
} as const;

/** The value of one sample (`name` or `name{labels}` exactly as exposed); 0 when absent. */
function sample(text: string, series: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return 0;
}

/** Polls `check` until it holds (every 20 ms), failing after `timeoutMs`. */
async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('operations endpoints (default configuration)', () => {
  let server: TestApp;
  const streams: StreamReader[] = [];
  const metrics = async () => {
    const response = await fetch(`${server.url}/metrics`);
    expect(response.status).toBe(200);
    return response.text();
  };

  beforeAll(async () => {
    server = await startTestApp();
  });
  afterEach(() => {
    for (const stream of streams.splice(0)) stream.close();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('GET /healthz is 200', async () => {
    const response = await fetch(`${server.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('GET /readyz is 200 with status ok and the bus and store health', async () => {
    const response = await fetch(`${server.url}/readyz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      status: 'ok',
      bus: { kind: 'memory', status: 'up' },
      store: { kind: 'pglite', status: 'up' },
    });
  });

  it('GET /metrics is Prometheus text with every metric of docs/http-api.md, without auth by default', async () => {
    const response = await fetch(`${server.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    for (const [name, type] of Object.entries(REQUIRED_METRICS)) {
      expect(text).toContain(`# HELP ${name} `);
      expect(text).toContain(`# TYPE ${name} ${type}\n`);
    }
  });

  it('moves the connection gauge up and back to 0, and counts connections, publishes and deliveries', async () => {
    const before = await metrics();
    expect(sample(before, 'sse_connections_active')).toBe(0);

    const token = await server.token('metrics-user');
    const first = await openStream(server.url, { token });
    const second = await openStream(server.url, { token });
    streams.push(first, second);
    await eventually(async () => sample(await metrics(), 'sse_connections_active') === 2, 'two active connections');

    const { id } = await server.publish({ topic: 'user:metrics-user' });
    for (const stream of [first, second]) {
      await stream.waitFor((events) => published(events).some((event) => event.id === id));
    }
    const during = await metrics();
    expect(sample(during, 'sse_connections_total') - sample(before, 'sse_connections_total')).toBe(2);
    const publishedSeries = 'sse_events_published_total{type="notification"}';
    expect(sample(during, publishedSeries) - sample(before, publishedSeries)).toBe(1);
    expect(sample(during, 'sse_events_delivered_total') - sample(before, 'sse_events_delivered_total')).toBe(2);
    const latencyCount = 'sse_event_delivery_latency_seconds_count';
    expect(sample(during, latencyCount) - sample(before, latencyCount)).toBe(1);

    first.close();
    second.close();
    await eventually(async () => sample(await metrics(), 'sse_connections_active') === 0, 'no active connection');
    expect(server.app.realtime.internals.connections.stats()).toEqual({ connections: 0, users: 0, ips: 0, topics: 0 });
  });

  it('counts errors by code, resets by reason and replayed events', async () => {
    const before = await metrics();
    expect((await fetch(`${server.url}/api/sse/stream`)).status).toBe(401);

    const token = await server.token('resume-user');
    const reset = await openStream(server.url, { token, lastEventId: 'not-an-id' });
    streams.push(reset);
    await reset.waitFor((events) => events.some((event) => event.event === 'stream.resumed'));
    expect(ofType(reset.events, 'stream.reset')).toEqual([{ reason: 'unknown_id' }]);

    const { id: firstId } = await server.publish({ topic: 'user:resume-user' });
    await server.publish({ topic: 'user:resume-user' });
    await server.publish({ topic: 'user:resume-user' });
    const resumed = await openStream(server.url, { token, lastEventId: firstId });
    streams.push(resumed);
    await resumed.waitFor((events) => events.some((event) => event.event === 'stream.resumed'));
    expect(ofType(resumed.events, 'stream.resumed')).toEqual([{ replayed: 2, complete: true }]);

    const after = await metrics();
    const unauthorized = 'sse_errors_total{code="unauthorized"}';
    expect(sample(after, unauthorized) - sample(before, unauthorized)).toBe(1);
    const unknownId = 'sse_stream_resets_total{reason="unknown_id"}';
    expect(sample(after, unknownId) - sample(before, unknownId)).toBe(1);
    expect(sample(after, 'sse_replayed_events_total') - sample(before, 'sse_replayed_events_total')).toBe(2);
  });

  it('sends no CORS headers to other origins when CORS_ORIGINS is unset', async () => {
    const response = await fetch(`${server.url}/healthz`, { headers: { origin: 'http://a.example' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('refuses a preflight in the error shape when CORS_ORIGINS is unset', async () => {
    const response = await fetch(`${server.url}/api/events`, {
      method: 'OPTIONS',
      headers: { origin: 'http://a.example', 'access-control-request-method': 'POST' },
    });
    await expectJsonError(response, 404, 'not_found');
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    expect(response.headers.get('access-control-allow-methods')).toBeNull();
  });
});

describe('operations endpoints (METRICS_TOKEN and CORS_ORIGINS)', () => {
  let server: TestApp;
  const ALLOWED = 'http://a.example';
  const OTHER = 'http://b.example';

  beforeAll(async () => {
    server = await startTestApp({ METRICS_TOKEN: 'metrics-secret', CORS_ORIGINS: `${ALLOWED}, http://c.example` });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('protects /metrics with METRICS_TOKEN', async () => {
    await expectJsonError(await fetch(`${server.url}/metrics`), 401, 'unauthorized');
    await expectJsonError(
      await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer wrong' } }),
      401,
      'unauthorized',
    );
    // An access token is not the metrics token.
    await expectJsonError(
      await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${await server.token('u1')}` } }),
      401,
      'unauthorized',
    );
    const response = await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer metrics-secret' } });
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('# TYPE sse_connections_active gauge');
  });

  it('answers a preflight from an allowed origin, and not from another', async () => {
    const preflight = (origin: string) =>
      fetch(`${server.url}/api/events`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type',
        },
      });
    const allowed = await preflight(ALLOWED);
    expect(allowed.status).toBeLessThan(300);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(allowed.headers.get('access-control-allow-credentials')).toBe('true');
    expect(allowed.headers.get('access-control-allow-methods')).toMatch(/POST/);

    const other = await preflight(OTHER);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    // The second entry of the comma-separated list works too.
    expect((await preflight('http://c.example')).headers.get('access-control-allow-origin')).toBe('http://c.example');
  });

  it('sets access-control-allow-origin on simple requests from an allowed origin only', async () => {
    const allowed = await fetch(`${server.url}/healthz`, { headers: { origin: ALLOWED } });
    expect(allowed.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    const other = await fetch(`${server.url}/healthz`, { headers: { origin: OTHER } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    // Errors carry it too, so a browser can read the JSON error.
    const refused = await fetch(`${server.url}/api/sse/stream`, { headers: { origin: ALLOWED } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe(ALLOWED);
  });

  it('sets the CORS headers on the SSE stream for an allowed origin', async () => {
    const token = await server.token('cors-user');
    const allowed = await openStream(server.url, { token, headers: { origin: ALLOWED } });
    const other = await openStream(server.url, { token, headers: { origin: OTHER } });
    try {
      expect(allowed.status).toBe(200);
      expect(allowed.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      expect(allowed.headers.get('access-control-allow-origin')).toBe(ALLOWED);
      expect(allowed.headers.get('access-control-allow-credentials')).toBe('true');
      expect(other.status).toBe(200);
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
      await allowed.waitFor((events) => events.some((event) => event.event === 'connection.established'));
    } finally {
      allowed.close();
      other.close();
    }
  });
});

describe('parseConfig', () => {
  const SECRET = 'x'.repeat(32);

  it('reports every bad variable at once', () => {
    const problems = problemsOf({ PORT: 'abc', HEARTBEAT_MS: '-1', JWT_SECRET: 'short' });
    expect(problems).toHaveLength(3);
    for (const name of ['PORT', 'HEARTBEAT_MS', 'JWT_SECRET']) {
      expect(problems.filter((problem) => problem.startsWith(`${name}: `))).toHaveLength(1);
    }
  });

  it('takes LISTEN_SOCKETS from 1 to 64, unset by default (the listener picks by platform)', () => {
    expect(parseConfig({}).listenSockets).toBeUndefined();
    expect(parseConfig({ LISTEN_SOCKETS: '16' }).listenSockets).toBe(16);
    for (const value of ['0', '65', 'many']) {
      expect(
        problemsOf({ LISTEN_SOCKETS: value }).filter((problem) => problem.startsWith('LISTEN_SOCKETS: ')),
      ).toHaveLength(1);
    }
  });

  it('reports cross-variable problems together with field problems', () => {
    const both = problemsOf({ PORT: 'abc', JWT_SECRET: SECRET, JWT_JWKS_URL: 'http://keys.example/jwks.json' });
    expect(both).toHaveLength(2);
    expect(both.some((problem) => problem.startsWith('PORT: '))).toBe(true);
    expect(both.some((problem) => problem.startsWith('JWT_JWKS_URL: '))).toBe(true);

    const production = problemsOf({ NODE_ENV: 'production', MAX_CONNECTIONS_PER_USER: '0' });
    expect(production).toHaveLength(2);
    expect(production.some((problem) => problem.startsWith('JWT_SECRET: '))).toBe(true);
    expect(production.some((problem) => problem.startsWith('MAX_CONNECTIONS_PER_USER: '))).toBe(true);
  });

  it('lists every problem in the error message', () => {
    try {
      parseConfig({ PORT: 'abc', LOG_LEVEL: 'loud' });
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).toMatch(/PORT/);
      expect((error as Error).message).toMatch(/LOG_LEVEL/);
    }
  });

  it('accepts a good configuration and applies the defaults', () => {
    const config = parseConfig({
      PORT: '0',
      JWT_SECRET: SECRET,
      CORS_ORIGINS: ' http://a.example ,, http://b.example ',
    });
    expect(config).toMatchObject({
      port: 0,
      host: '127.0.0.1',
      heartbeatMs: 15_000,
      maxConnectionsPerUser: 16,
      maxConnectionsPerIp: 2_000,
      corsOrigins: ['http://a.example', 'http://b.example'],
      jwt: { kind: 'secret', secret: SECRET },
      usesDevSecret: false,
      devLogin: true,
    });
    expect(Object.isFrozen(config)).toBe(true);
    expect(parseConfig({ JWT_JWKS_URL: 'http://keys.example/jwks.json' })).toMatchObject({
      jwt: { kind: 'jwks', url: 'http://keys.example/jwks.json' },
      devLogin: false,
    });
  });
});
