/**
 * Security regression suite, authentication (issue 11, items 7, 8, 9 and the token lifetime of
 * 12): JWKS mode pinned to one audience and issuer in production, an identity-provider blip is a
 * 503 that clients retry (with the last good keys still serving), dev login only where nobody
 * else reaches it, and no token lives for ever.
 */
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createJwtVerifier } from '../src/adapters/auth/jwt-verifier.js';
import { parseConfig } from '../../../apps/backend/src/config.js';
import { expectJsonError } from './helpers/http-assertions.js';
import { startJwksServer, type JwksServer } from './helpers/jwks-server.js';
import { startServerProcesses, type ServerProcess } from './helpers/server-process.js';
import { startTestApp, TEST_JWT_SECRET, type TestApp } from './helpers/test-app.js';

function callWith(server: TestApp, token: string): Promise<Response> {
  return fetch(`${server.url}/api/ai/provider`, { headers: { authorization: `Bearer ${token}` } });
}

describe('security: JWKS mode in production needs an audience and an issuer', () => {
  const production = { NODE_ENV: 'production', JWT_JWKS_URL: 'https://idp.example.com/.well-known/jwks.json' };

  it('refuses to start without JWT_AUDIENCE and JWT_ISSUER, reported with every other problem', () => {
    expect(() => parseConfig({ ...production, PORT: 'not-a-port' })).toThrow(
      expect.objectContaining({
        problems: expect.arrayContaining([
          expect.stringMatching(/^PORT: /),
          expect.stringMatching(/^JWT_AUDIENCE: required with JWT_JWKS_URL/),
          expect.stringMatching(/^JWT_ISSUER: required with JWT_JWKS_URL/),
        ]),
      }),
    );
    expect(parseConfig({ ...production, JWT_AUDIENCE: 'api', JWT_ISSUER: 'https://idp.example.com/' })).toMatchObject({
      jwtAudience: 'api',
      jwtIssuer: 'https://idp.example.com/',
    });
    // Outside production the checks stay optional, as before.
    expect(parseConfig({ JWT_JWKS_URL: production.JWT_JWKS_URL }).jwtAudience).toBeUndefined();
  });
});

describe('security: JWKS tokens (audience, issuer, typ) and an identity provider that fails', () => {
  let idp: JwksServer;
  let server: TestApp;

  beforeAll(async () => {
    idp = await startJwksServer();
    await idp.publish('key-1');
    server = await startTestApp({
      JWT_SECRET: '',
      JWT_JWKS_URL: idp.url,
      JWT_AUDIENCE: 'realtime-api',
      JWT_ISSUER: 'https://idp.test/',
      JWT_TYP: 'at+jwt',
    });
  });
  afterAll(async () => {
    await server?.close();
    await idp?.close();
  });

  const claims = { aud: 'realtime-api', iss: 'https://idp.test/' };

  it('accepts only the configured audience, issuer and typ', async () => {
    expect((await callWith(server, await idp.sign('key-1', claims, { typ: 'at+jwt' }))).status).toBe(200);
    for (const [label, token] of [
      ['another audience', await idp.sign('key-1', { ...claims, aud: 'other-app' }, { typ: 'at+jwt' })],
      ['another issuer', await idp.sign('key-1', { ...claims, iss: 'https://evil.test/' }, { typ: 'at+jwt' })],
      ['no typ', await idp.sign('key-1', claims)],
      ['an ID token typ', await idp.sign('key-1', claims, { typ: 'JWT' })],
    ] as const) {
      await expectJsonError(await callWith(server, token), 401, 'unauthorized').catch((error: unknown) => {
        throw new Error(`${label}: ${String(error)}`);
      });
    }
  });

  it('while the JWKS fails: known keys still verify, a new kid is 503 auth_unavailable with Retry-After', async () => {
    const known = await idp.sign('key-1', claims, { typ: 'at+jwt' });
    const rotated = await idp.sign('key-2', claims, { typ: 'at+jwt' });
    for (const mode of ['http_500', 'hang_up'] as const) {
      idp.mode = mode;
      expect((await callWith(server, known)).status, mode).toBe(200);
      const refused = await callWith(server, rotated);
      await expectJsonError(refused, 503, 'auth_unavailable');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      // A stream refused the same way, before any byte of SSE.
      const stream = await fetch(`${server.url}/api/sse/stream`, { headers: { authorization: `Bearer ${rotated}` } });
      await expectJsonError(stream, 503, 'auth_unavailable');
    }
    idp.mode = 'ok';
  });
});

describe('security: the JWKS key source (no retry storms, last good keys, recovery)', () => {
  let idp: JwksServer;
  afterEach(async () => {
    await idp?.close();
  });

  it('answers 503 when the first fetch fails, then recovers after the cool-down; never hammers the IdP', async () => {
    idp = await startJwksServer();
    await idp.publish('key-1');
    idp.mode = 'http_500';
    let now = 1_000_000;
    const verifier = createJwtVerifier({
      jwt: { kind: 'jwks', url: idp.url },
      maxLifetimeMs: 86_400_000,
      jwks: { cooldownMs: 5_000, now: () => now },
    });
    const token = await idp.sign('key-1');
    for (let attempt = 0; attempt < 5; attempt++) {
      await expect(verifier.verify(token)).rejects.toMatchObject({ code: 'auth_unavailable' });
    }
    expect(idp.fetches).toBe(1);
    idp.mode = 'ok';
    now += 5_000;
    await expect(verifier.verify(token)).resolves.toMatchObject({ userId: 'jwks-user' });
  });

  it('keeps serving a stale key set while its refresh fails, and picks up a rotated key once the IdP is back', async () => {
    idp = await startJwksServer();
    await idp.publish('key-1');
    let now = 1_000_000;
    const verifier = createJwtVerifier({
      jwt: { kind: 'jwks', url: idp.url },
      maxLifetimeMs: 86_400_000,
      jwks: { cooldownMs: 1_000, maxAgeMs: 10_000, now: () => now },
    });
    const known = await idp.sign('key-1');
    await expect(verifier.verify(known)).resolves.toBeDefined();
    idp.mode = 'hang_up';
    now += 60_000;
    // Stale and the IdP is down: verified at once with the last good keys (the refresh runs behind).
    await expect(verifier.verify(known)).resolves.toBeDefined();
    await vi.waitFor(() => expect(idp.fetches).toBe(2));
    await new Promise((resolve) => setTimeout(resolve, 50));
    await expect(verifier.verify(await idp.sign('key-2'))).rejects.toMatchObject({ code: 'auth_unavailable' });
    idp.mode = 'ok';
    await idp.publish('key-2');
    now += 1_000;
    await expect(verifier.verify(await idp.sign('key-2'))).resolves.toBeDefined();
    // A kid the IdP does not know either is a plain 401.
    now += 1_000;
    await expect(verifier.verify(await idp.sign('key-3'))).rejects.toMatchObject({ code: 'unauthorized' });
  });
});

describe('security: the verified-token cache never outlives a withdrawn key', () => {
  let idp: JwksServer;
  afterEach(async () => {
    await idp?.close();
  });

  it('refuses a cached token once the IdP withdrew its key, as it would without the cache', async () => {
    idp = await startJwksServer();
    await idp.publish('key-1');
    let now = Date.now();
    const verifier = createJwtVerifier({
      jwt: { kind: 'jwks', url: idp.url },
      maxLifetimeMs: 86_400_000,
      now: () => now,
      jwks: { cooldownMs: 1_000, maxAgeMs: 10_000, now: () => now },
    });
    const token = await idp.sign('key-1');
    await verifier.verify(token); // fetches the key set: not cached, no set vouched for it beforehand
    await verifier.verify(token); // verified once under this key set: noted, not remembered yet
    const first = await verifier.verify(token);
    // Verified twice under this key set: the same principal comes back from the cache.
    await expect(verifier.verify(token)).resolves.toBe(first);
    idp.unpublish('key-1');
    now += 10_000;
    // The key set is due for a refresh: the token is checked again (the old set still has key-1,
    // as without the cache) and the refresh fetches the set without it.
    await expect(verifier.verify(token)).resolves.toMatchObject({ userId: 'jwks-user' });
    await vi.waitFor(() => expect(idp.fetches).toBe(2));
    await new Promise((resolve) => setTimeout(resolve, 50));
    now += 1_000;
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: 'unauthorized' });
  });

  it('refuses a cached token once a rotation (a new kid) fetched a key set without its key', async () => {
    idp = await startJwksServer();
    await idp.publish('key-1');
    let now = Date.now();
    const verifier = createJwtVerifier({
      jwt: { kind: 'jwks', url: idp.url },
      maxLifetimeMs: 86_400_000,
      now: () => now,
      jwks: { cooldownMs: 1_000, maxAgeMs: 600_000, now: () => now },
    });
    const old = await idp.sign('key-1');
    await verifier.verify(old);
    await verifier.verify(old);
    const cached = await verifier.verify(old);
    await expect(verifier.verify(old)).resolves.toBe(cached);
    idp.unpublish('key-1');
    await idp.publish('key-2');
    now += 1_000;
    // The new kid makes the source fetch the rotated set at once (the set itself is not stale).
    await expect(verifier.verify(await idp.sign('key-2'))).resolves.toBeDefined();
    expect(idp.fetches).toBe(2);
    // Same answers as without the cache: 503 while the source cools down, then 401.
    await expect(verifier.verify(old)).rejects.toMatchObject({ code: 'auth_unavailable' });
    now += 1_000;
    await expect(verifier.verify(old)).rejects.toMatchObject({ code: 'unauthorized' });
  });
});

describe('security: maximum token lifetime', () => {
  let server: TestApp;
  beforeAll(async () => {
    server = await startTestApp({ JWT_MAX_LIFETIME_MS: String(2 * 3_600_000) });
  });
  afterAll(async () => {
    await server?.close();
  });

  const signWithExp = (exp: number) =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('long-lived')
      .setExpirationTime(exp)
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));

  it('refuses a token whose exp is further ahead than JWT_MAX_LIFETIME_MS (1e308 included)', async () => {
    const nowSeconds = Math.floor(Date.now() / 1000);
    expect((await callWith(server, await signWithExp(nowSeconds + 3_600))).status).toBe(200);
    for (const exp of [nowSeconds + 3 * 3_600, nowSeconds + 365 * 86_400, 1e308]) {
      const body = await expectJsonError(await callWith(server, await signWithExp(exp)), 401, 'unauthorized');
      expect(body.error.message).toMatch(/lives too long/);
    }
  });

  it('defaults to 24 h', () => {
    expect(parseConfig({}).jwtMaxLifetimeMs).toBe(86_400_000);
  });
});

describe('security: dev login only when asked for, or on a loopback address outside production', () => {
  it.each([
    [{}, true],
    [{ HOST: '127.0.0.1' }, true],
    [{ HOST: 'localhost' }, true],
    [{ HOST: '::1' }, true],
    [{ HOST: '0.0.0.0' }, false],
    [{ HOST: '::' }, false],
    [{ HOST: '10.1.2.3' }, false],
    [{ HOST: '127.0.0.1', NODE_ENV: 'production', JWT_SECRET: TEST_JWT_SECRET }, false],
    [{ HOST: '0.0.0.0', AUTH_DEV_LOGIN: 'true' }, true],
    [{ HOST: '127.0.0.1', AUTH_DEV_LOGIN: 'false' }, false],
  ] as const)('%j → dev login %s', (env, on) => {
    expect(parseConfig(env).devLogin).toBe(on);
  });

  it('warns loudly at start whenever it is on, and not otherwise', async () => {
    const [on, off] = (await startServerProcesses([{}, { AUTH_DEV_LOGIN: 'false' }])) as [ServerProcess, ServerProcess];
    try {
      expect(on.output()).toMatch(/DEV LOGIN IS ON/);
      expect(off.output()).not.toMatch(/DEV LOGIN/);
      const ask = (url: string) =>
        fetch(`${url}/api/auth/dev-token`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ userId: 'u1' }),
        });
      expect((await ask(on.url)).status).toBe(200);
      await expectJsonError(await ask(off.url), 404, 'not_found');
    } finally {
      await Promise.all([on.stop(), off.stop()]);
    }
  });
});
