import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signDevToken } from '../src/adapters/auth/dev-token.js';
import { ofType, openStream, published, type StreamReader } from './helpers/sse-reader.js';
import { expectJsonError } from './helpers/http-assertions.js';
import { startJwksServer, type JwksServer } from './helpers/jwks-server.js';
import { startTestApp, TEST_JWT_SECRET, type TestApp } from './helpers/test-app.js';

interface Established {
  connectionId: string;
  instanceId: string;
  topics: string[];
}

const OTHER_SECRET = 'another-secret-9876543210-9876543210-9876543210';

/** A raw GET of the stream endpoint, for refusals (no SSE parsing). */
function getStream(
  server: TestApp,
  init: { query?: string; headers?: Record<string, string> } = {},
): Promise<Response> {
  return fetch(`${server.url}/api/sse/stream${init.query ?? ''}`, { headers: init.headers ?? {} });
}

/** Asserts a refused stream: the JSON error came before any SSE byte. */
async function expectStreamRefused(response: Response, status: number, code: string): Promise<void> {
  expect(response.headers.get('content-type')).not.toMatch(/event-stream/);
  const body = await expectJsonError(response, status, code);
  expect(JSON.stringify(body)).not.toContain('retry:');
}

function post(url: string, init: { token?: string; body?: string; headers?: Record<string, string> } = {}) {
  return fetch(url, {
    method: 'POST',
    headers: { ...(init.token ? { authorization: `Bearer ${init.token}` } : {}), ...init.headers },
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
}

async function established(stream: StreamReader): Promise<Established> {
  await stream.waitFor((events) => events.some((event) => event.event === 'connection.established'));
  const [first] = ofType<Established>(stream.events, 'connection.established');
  if (!first) throw new Error('no connection.established');
  return first;
}

/** Resolves true when the stream ended within `ms`, false when it is still open then. */
async function endsWithin(stream: StreamReader, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([
    stream.ended.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]);
  clearTimeout(timer);
  return result;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('auth: stream and API credentials', () => {
  let server: TestApp;
  const streams: StreamReader[] = [];
  const track = (stream: StreamReader) => {
    streams.push(stream);
    return stream;
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

  it('refuses a stream without credentials with a 401 JSON error, before any stream byte', async () => {
    await expectStreamRefused(await getStream(server), 401, 'unauthorized');
  });

  it('refuses a token signed with another secret', async () => {
    const forged = await signDevToken(OTHER_SECRET, { userId: 'u1', expiresIn: 3600 });
    await expectStreamRefused(
      await getStream(server, { headers: { authorization: `Bearer ${forged}` } }),
      401,
      'unauthorized',
    );
  });

  it('refuses an expired token', async () => {
    const expired = await server.token('u1', { expiresIn: -30 });
    const response = await getStream(server, { headers: { authorization: `Bearer ${expired}` } });
    expect(response.headers.get('content-type')).not.toMatch(/event-stream/);
    const body = await expectJsonError(response, 401, 'unauthorized');
    expect(body.error.message).toMatch(/expired/);
  });

  it('refuses a token without exp', async () => {
    const noExp = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('u1')
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    await expectStreamRefused(
      await getStream(server, { headers: { authorization: `Bearer ${noExp}` } }),
      401,
      'unauthorized',
    );
  });

  it.each([
    ['a Basic scheme', 'Basic dTE6cGFzcw=='],
    ['a bare token', 'not-a-jwt'],
    ['Bearer without a token', 'Bearer '],
    ['Bearer with a non-JWT', 'Bearer garbage'],
    ['Bearer with two tokens', 'Bearer a b'],
  ])('refuses a malformed Authorization header (%s)', async (_name, header) => {
    await expectStreamRefused(await getStream(server, { headers: { authorization: header } }), 401, 'unauthorized');
  });

  it('does not fall back to the cookie (or anonymous) when the Bearer header is bad', async () => {
    const good = await server.token('u1');
    const response = await getStream(server, {
      headers: { authorization: 'Bearer bad', cookie: `access_token=${good}` },
    });
    await expectStreamRefused(response, 401, 'unauthorized');
  });

  it('refuses API calls without or with bad credentials', async () => {
    await expectJsonError(await post(`${server.url}/api/sse/ticket`), 401, 'unauthorized');
    const forged = await signDevToken(OTHER_SECRET, { userId: 'u1', expiresIn: 3600, scope: 'events:publish' });
    await expectJsonError(
      await post(`${server.url}/api/events`, {
        token: forged,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ topic: 'user:u1', type: 'notification', payload: { title: 't', level: 'info' } }),
      }),
      401,
      'unauthorized',
    );
    await expectJsonError(await fetch(`${server.url}/api/sse/poll?timeoutMs=0`), 401, 'unauthorized');
  });

  it('lets a token granting doc:42 subscribe to it, and refuses a topic it does not grant with 403', async () => {
    const token = await server.token('topics-user', { topics: ['doc:42'] });
    const stream = track(await openStream(server.url, { token, query: { topics: 'doc:42' } }));
    expect(stream.status).toBe(200);
    expect((await established(stream)).topics).toEqual(['doc:42']);

    await expectStreamRefused(
      await getStream(server, { query: '?topics=doc:43', headers: { authorization: `Bearer ${token}` } }),
      403,
      'forbidden_topic',
    );
    // One forbidden topic among granted ones refuses the whole stream.
    await expectStreamRefused(
      await getStream(server, {
        query: '?topics=doc:42,user:someone-else',
        headers: { authorization: `Bearer ${token}` },
      }),
      403,
      'forbidden_topic',
    );
  });

  it('defaults to user:<sub> plus every granted topic', async () => {
    const token = await server.token('default-user', { topics: ['doc:42', 'broadcast'] });
    const stream = track(await openStream(server.url, { token }));
    expect(stream.status).toBe(200);
    const { topics, connectionId, instanceId } = await established(stream);
    expect([...topics].sort()).toEqual(['broadcast', 'doc:42', 'user:default-user']);
    expect(connectionId).toEqual(expect.any(String));
    expect(instanceId).toEqual(expect.any(String));

    const { id } = await server.publish({ topic: 'doc:42' });
    await stream.waitFor((events) => published(events).some((event) => event.id === id));
  });

  it('issues one-time tickets (empty body, with or without a JSON content type) that open a stream once', async () => {
    const token = await server.token('ticket-user', { topics: ['doc:7'] });
    const variants: Record<string, string>[] = [{}, { 'content-type': 'application/json' }];
    for (const headers of variants) {
      const response = await post(`${server.url}/api/sse/ticket`, { token, headers });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { ticket: string; expiresIn: number };
      expect(body.expiresIn).toBe(30);
      expect(body.ticket).toMatch(/^[A-Za-z0-9_-]{16,}$/);
      expect(Object.keys(body).sort()).toEqual(['expiresIn', 'ticket']);

      const stream = track(await openStream(server.url, { query: { ticket: body.ticket } }));
      expect(stream.status).toBe(200);
      // Same sub and topics as the token.
      expect([...(await established(stream)).topics].sort()).toEqual(['doc:7', 'user:ticket-user']);

      await expectStreamRefused(await getStream(server, { query: `?ticket=${body.ticket}` }), 401, 'unauthorized');
    }
  });

  it('refuses unknown tickets on the stream and every ticket on the poll endpoint', async () => {
    await expectStreamRefused(await getStream(server, { query: '?ticket=made-up' }), 401, 'unauthorized');
    const token = await server.token('poll-ticket-user');
    const { ticket } = (await (await post(`${server.url}/api/sse/ticket`, { token })).json()) as { ticket: string };
    await expectJsonError(
      await fetch(`${server.url}/api/sse/poll?timeoutMs=0&ticket=${encodeURIComponent(ticket)}`),
      401,
      'unauthorized',
    );
    // Tickets are not credentials for API calls either.
    await expectJsonError(
      await post(`${server.url}/api/sse/ticket?ticket=${encodeURIComponent(ticket)}`),
      401,
      'unauthorized',
    );
  });

  it('opens a stream with the access_token cookie, and refuses a bad cookie', async () => {
    const token = await server.token('cookie-user');
    const stream = track(await openStream(server.url, { headers: { cookie: `access_token=${token}` } }));
    expect(stream.status).toBe(200);
    expect((await established(stream)).topics).toEqual(['user:cookie-user']);

    const forged = await signDevToken(OTHER_SECRET, { userId: 'cookie-user', expiresIn: 3600 });
    await expectStreamRefused(
      await getStream(server, { headers: { cookie: `access_token=${forged}` } }),
      401,
      'unauthorized',
    );
  });

  it('answers refresh for an unknown connection with 404 not_found, and needs credentials', async () => {
    const token = await server.token('refresh-404');
    await expectJsonError(
      await post(`${server.url}/api/sse/connections/00000000-0000-4000-8000-000000000000/refresh`, { token }),
      404,
      'not_found',
    );
    await expectJsonError(
      await post(`${server.url}/api/sse/connections/00000000-0000-4000-8000-000000000000/refresh`),
      401,
      'unauthorized',
    );
  });

  it('refuses a refresh whose token no longer grants the stream’s topics (403 forbidden_topic)', async () => {
    const token = await server.token('refresh-topics', { topics: ['doc:42'] });
    const stream = track(await openStream(server.url, { token, query: { topics: 'doc:42' } }));
    const { connectionId } = await established(stream);
    await expectJsonError(
      await post(`${server.url}/api/sse/connections/${connectionId}/refresh`, {
        token: await server.token('refresh-topics'),
      }),
      403,
      'forbidden_topic',
    );
    const expired = await server.token('refresh-topics', { topics: ['doc:42'], expiresIn: -30 });
    await expectJsonError(
      await post(`${server.url}/api/sse/connections/${connectionId}/refresh`, { token: expired }),
      401,
      'unauthorized',
    );
    // A good token of the same user still works afterwards.
    const ok = await post(`${server.url}/api/sse/connections/${connectionId}/refresh`, { token });
    expect(ok.status).toBe(200);
  });

  describe('POST /api/auth/dev-token', () => {
    it('returns {accessToken, expiresIn: 3600} with a token that works', async () => {
      const response = await post(`${server.url}/api/auth/dev-token`, {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId: 'dev-user', topics: ['doc:9'], scope: 'events:publish' }),
      });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { accessToken: string; expiresIn: number };
      expect(body.expiresIn).toBe(3600);
      expect(body.accessToken.split('.')).toHaveLength(3);

      const stream = track(await openStream(server.url, { token: body.accessToken }));
      expect([...(await established(stream)).topics].sort()).toEqual(['doc:9', 'user:dev-user']);
      // The scope claim is honoured: the token may publish.
      const publish = await post(`${server.url}/api/events`, {
        token: body.accessToken,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ topic: 'doc:9', type: 'notification', payload: { title: 'x', level: 'info' } }),
      });
      expect(publish.status).toBe(202);
    });

    it.each([
      ['an empty object', '{}', 'invalid_request'],
      ['a bad userId', JSON.stringify({ userId: 'has space' }), 'invalid_request'],
      ['a bad topic', JSON.stringify({ userId: 'u1', topics: ['no spaces allowed'] }), 'invalid_request'],
      ['an unknown field', JSON.stringify({ userId: 'u1', admin: true }), 'invalid_request'],
      ['a non-object', '"u1"', 'invalid_request'],
      ['malformed JSON', '{"userId":', 'invalid_json'],
    ])('refuses %s with 400', async (_name, body, code) => {
      const response = await post(`${server.url}/api/auth/dev-token`, {
        headers: { 'content-type': 'application/json' },
        body,
      });
      await expectJsonError(response, 400, code);
    });
  });
});

describe('auth: token and ticket lifetimes', () => {
  let server: TestApp;
  const streams: StreamReader[] = [];
  const track = (stream: StreamReader) => {
    streams.push(stream);
    return stream;
  };

  beforeAll(async () => {
    server = await startTestApp({ TICKET_TTL_MS: '1000', AUTH_EXPIRY_WARNING_MS: '2000' });
  });
  afterEach(() => {
    for (const stream of streams.splice(0)) stream.close();
  });
  afterAll(async () => {
    await server?.close();
  });

  /** A token expiring in ~4 s (exp has whole-second precision) and when exactly. */
  async function shortToken(userId: string): Promise<{ token: string; expMs: number }> {
    const token = await server.token(userId, { expiresIn: 4 });
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { exp: number };
    return { token, expMs: payload.exp * 1000 };
  }

  it('refuses an expired ticket', async () => {
    const token = await server.token('ttl-user');
    const response = await post(`${server.url}/api/sse/ticket`, { token });
    const { ticket, expiresIn } = (await response.json()) as { ticket: string; expiresIn: number };
    expect(expiresIn).toBe(1);
    // A fixed wait is the point here: the ticket must be past its 1 s lifetime.
    await sleep(1_500);
    await expectStreamRefused(await getStream(server, { query: `?ticket=${ticket}` }), 401, 'unauthorized');
  });

  it('warns with auth.expiring before exp, then refresh keeps the stream open past the old exp', async () => {
    const { token, expMs } = await shortToken('refresh-ok');
    const stream = track(await openStream(server.url, { token }));
    const { connectionId } = await established(stream);

    await stream.waitFor((events) => events.some((event) => event.event === 'auth.expiring'), 10_000);
    expect(Date.now()).toBeLessThan(expMs);
    const [expiring] = ofType<{ connectionId: string; expiresAt: string }>(stream.events, 'auth.expiring');
    expect(expiring).toEqual({ connectionId, expiresAt: new Date(expMs).toISOString() });
    expect(stream.events.find((event) => event.event === 'auth.expiring')?.id).toBeUndefined();

    const fresh = await server.token('refresh-ok');
    const response = await post(`${server.url}/api/sse/connections/${connectionId}/refresh`, { token: fresh });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { connectionId: string; expiresAt: string };
    expect(body.connectionId).toBe(connectionId);
    expect(Date.parse(body.expiresAt)).toBeGreaterThan(expMs + 60_000);

    // Still open well past the old exp, with no auth.expired, and still delivering.
    const stillOpen = !(await endsWithin(stream, expMs - Date.now() + 1_500));
    expect(stillOpen).toBe(true);
    expect(stream.events.some((event) => event.event === 'auth.expired')).toBe(false);
    const { id } = await server.publish({ topic: 'user:refresh-ok' });
    await stream.waitFor((events) => published(events).some((event) => event.id === id));
  });

  it('refuses a refresh with another user’s token (403), and the stream then expires', async () => {
    const { token, expMs } = await shortToken('refresh-owner');
    const stream = track(await openStream(server.url, { token }));
    const { connectionId } = await established(stream);

    const intruder = await server.token('refresh-intruder');
    await expectJsonError(
      await post(`${server.url}/api/sse/connections/${connectionId}/refresh`, { token: intruder }),
      403,
      'forbidden',
    );

    await stream.waitFor((events) => events.some((event) => event.event === 'auth.expired'), 15_000);
    expect(Date.now()).toBeGreaterThanOrEqual(expMs - 50);
    await stream.ended;
  });

  it('without refresh sends auth.expiring, then auth.expired, then closes the stream', async () => {
    const { token, expMs } = await shortToken('no-refresh');
    const stream = track(await openStream(server.url, { token }));
    const { connectionId } = await established(stream);

    await stream.waitFor((events) => events.some((event) => event.event === 'auth.expired'), 15_000);
    expect(Date.now()).toBeGreaterThanOrEqual(expMs - 50);
    await stream.ended;
    const types = stream.events.map((event) => event.event);
    expect(types.indexOf('auth.expiring')).toBeGreaterThan(types.indexOf('connection.established'));
    expect(types.indexOf('auth.expired')).toBeGreaterThan(types.indexOf('auth.expiring'));
    expect(ofType(stream.events, 'auth.expired')).toEqual([{ connectionId }]);
    expect(stream.events.find((event) => event.event === 'auth.expired')?.id).toBeUndefined();
    // The connection is gone: refreshing it now is a 404.
    await expectJsonError(
      await post(`${server.url}/api/sse/connections/${connectionId}/refresh`, {
        token: await server.token('no-refresh'),
      }),
      404,
      'not_found',
    );
  });
});

describe('auth: JWKS mode', () => {
  let idp: JwksServer;
  let server: TestApp;
  let otherIdp: JwksServer;

  beforeAll(async () => {
    idp = await startJwksServer();
    await idp.publish('key-1');
    otherIdp = await startJwksServer();
    // An empty JWT_SECRET counts as unset (config.ts), which overrides startTestApp's default secret.
    server = await startTestApp({ JWT_SECRET: '', JWT_JWKS_URL: idp.url });
  });
  afterAll(async () => {
    await server?.close();
    await Promise.all([idp?.close(), otherIdp?.close()]);
  });

  it('opens a stream with an RS256 token signed by a JWKS key', async () => {
    const stream = await openStream(server.url, { token: await idp.sign('key-1', { topics: ['doc:1'] }) });
    try {
      expect(stream.status).toBe(200);
      expect([...(await established(stream)).topics].sort()).toEqual(['doc:1', 'user:jwks-user']);
    } finally {
      stream.close();
    }
  });

  it('refuses a token signed by another key under a known kid (401); an unknown kid is looked up later (503)', async () => {
    const forged = await otherIdp.sign('key-1');
    await expectStreamRefused(
      await getStream(server, { headers: { authorization: `Bearer ${forged}` } }),
      401,
      'unauthorized',
    );
    // The key set was fetched moments ago: a kid it lacks may be a rotation, retried after Retry-After.
    const unknown = await otherIdp.sign('key-2');
    await expectStreamRefused(
      await getStream(server, { headers: { authorization: `Bearer ${unknown}` } }),
      503,
      'auth_unavailable',
    );
  });

  it('refuses an HS256 token, even one signed with the test secret', async () => {
    const hs = await server.token('jwks-user');
    await expectStreamRefused(
      await getStream(server, { headers: { authorization: `Bearer ${hs}` } }),
      401,
      'unauthorized',
    );
  });

  it('has no dev-token endpoint', async () => {
    await expectJsonError(
      await post(`${server.url}/api/auth/dev-token`, {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId: 'u1' }),
      }),
      404,
      'not_found',
    );
  });
});

describe('auth: dev login in production', () => {
  const devTokenRequest = (server: TestApp) =>
    post(`${server.url}/api/auth/dev-token`, {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'u1' }),
    });

  it('is off when NODE_ENV=production (startTestApp sets JWT_SECRET)', async () => {
    const server = await startTestApp({ NODE_ENV: 'production' });
    try {
      await expectJsonError(await devTokenRequest(server), 404, 'not_found');
    } finally {
      await server?.close();
    }
  });

  it('is on in production when AUTH_DEV_LOGIN=true', async () => {
    const server = await startTestApp({ NODE_ENV: 'production', AUTH_DEV_LOGIN: 'true' });
    try {
      const response = await devTokenRequest(server);
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ accessToken: expect.any(String), expiresIn: 3600 });
    } finally {
      await server?.close();
    }
  });

  it('production refuses to start without JWT_SECRET', async () => {
    await expect(startTestApp({ NODE_ENV: 'production', JWT_SECRET: '' })).rejects.toMatchObject({
      name: 'ConfigError',
      problems: [expect.stringMatching(/^JWT_SECRET: /)],
    });
  });
});
