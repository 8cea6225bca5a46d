import { base64url, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createHs256FastPath, type Hs256Checks } from './hs256-fast-path.js';

const SECRET = new TextEncoder().encode('hs256-fast-path-test-secret-0123456789');
const NOW_MS = 1_900_000_000_000;
const NOW = NOW_MS / 1000;

/** A token signed with SECRET from raw header and payload objects (anything, even what jose refuses to sign). */
function rawToken(header: object, payload: object | string | Uint8Array, secret = SECRET): string {
  const body =
    base64url.encode(JSON.stringify(header)) +
    '.' +
    base64url.encode(typeof payload === 'string' || payload instanceof Uint8Array ? payload : JSON.stringify(payload));
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

/** What jose says with the same checks: the payload, or undefined for a refusal. */
async function jose(token: string, checks: Hs256Checks): Promise<JWTPayload | undefined> {
  try {
    const { payload } = await jwtVerify(token, SECRET, {
      algorithms: ['HS256'],
      requiredClaims: ['sub', 'exp'],
      currentDate: new Date(NOW_MS),
      ...checks,
    });
    return payload;
  } catch {
    return undefined;
  }
}

describe('the HS256 fast path', () => {
  const good = { sub: 'u1', exp: NOW + 60 };
  const cases: [string, string, Hs256Checks][] = [
    ['a plain token', rawToken({ alg: 'HS256' }, good), {}],
    ['typ and kid', rawToken({ alg: 'HS256', typ: 'JWT', kid: 'k' }, good), {}],
    ['exp now (expired)', rawToken({ alg: 'HS256' }, { sub: 'u1', exp: NOW }), {}],
    ['exp passed', rawToken({ alg: 'HS256' }, { sub: 'u1', exp: NOW - 100 }), {}],
    ['exp a string', rawToken({ alg: 'HS256' }, { sub: 'u1', exp: String(NOW + 60) }), {}],
    ['nbf ahead', rawToken({ alg: 'HS256' }, { ...good, nbf: NOW + 1 }), {}],
    ['nbf now', rawToken({ alg: 'HS256' }, { ...good, nbf: NOW }), {}],
    ['iat a string', rawToken({ alg: 'HS256' }, { ...good, iat: 'yesterday' }), {}],
    ['alg none', rawToken({ alg: 'none' }, good), {}],
    ['alg HS512 header', rawToken({ alg: 'HS512' }, good), {}],
    ['crit header', rawToken({ alg: 'HS256', crit: ['exp'] }, good), {}],
    ['b64 false', rawToken({ alg: 'HS256', b64: false, crit: ['b64'] }, good), {}],
    ['another secret', rawToken({ alg: 'HS256' }, good, new TextEncoder().encode('x'.repeat(40))), {}],
    ['payload an array', rawToken({ alg: 'HS256' }, [1, 2]), {}],
    ['payload not JSON', rawToken({ alg: 'HS256' }, 'not json'), {}],
    [
      'payload not UTF-8',
      rawToken({ alg: 'HS256' }, Buffer.from('7b22737562223a22ff222c22657870223a316531307d', 'hex')),
      {},
    ],
    ['right issuer', rawToken({ alg: 'HS256' }, { ...good, iss: 'idp' }), { issuer: 'idp' }],
    ['wrong issuer', rawToken({ alg: 'HS256' }, { ...good, iss: 'evil' }), { issuer: 'idp' }],
    ['no issuer', rawToken({ alg: 'HS256' }, good), { issuer: 'idp' }],
    ['audience in a list', rawToken({ alg: 'HS256' }, { ...good, aud: ['x', 'api'] }), { audience: 'api' }],
    ['wrong audience', rawToken({ alg: 'HS256' }, { ...good, aud: 'other' }), { audience: 'api' }],
    [
      'typ at+jwt as application/at+jwt',
      rawToken({ alg: 'HS256', typ: 'application/AT+JWT' }, good),
      { typ: 'at+jwt' },
    ],
    ['wrong typ', rawToken({ alg: 'HS256', typ: 'JWT' }, good), { typ: 'at+jwt' }],
    ['no typ', rawToken({ alg: 'HS256' }, good), { typ: 'at+jwt' }],
  ];

  it.each(cases)('%s: accepts exactly what jose accepts', async (_label, token, checks) => {
    const fast = createHs256FastPath(SECRET, checks)(token, NOW_MS);
    const expected = await jose(token, checks);
    // Never accepts what jose refuses; may leave an unusual token to jose (undefined).
    if (expected === undefined) expect(fast).toBeUndefined();
    else expect(fast).toEqual(expected);
  });

  it('answers the common token itself (so jose is not needed for it)', async () => {
    const token = await new SignJWT({ topics: ['broadcast'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('u1')
      .setIssuedAt(NOW)
      .setExpirationTime(NOW + 60)
      .sign(SECRET);
    expect(createHs256FastPath(SECRET, {})(token, NOW_MS)).toMatchObject({ sub: 'u1', topics: ['broadcast'] });
  });

  it('judges each header the same the second time it is seen, and past 64 distinct headers', async () => {
    // One verifier for all: the header verdicts it remembers must never let one token's header
    // stand for another's.
    const checks: Hs256Checks = { typ: 'at+jwt' };
    const fast = createHs256FastPath(SECRET, checks);
    const headers: object[] = [
      { alg: 'HS256', typ: 'at+jwt' },
      { alg: 'HS256', typ: 'JWT' },
      { alg: 'none', typ: 'at+jwt' },
      { alg: 'HS256', typ: 'at+jwt', crit: ['exp'] },
      ...Array.from({ length: 70 }, (_, i) => ({ alg: 'HS256', typ: 'at+jwt', kid: `k${i}` })),
    ];
    let accepted = 0;
    for (const round of [1, 2]) {
      for (const header of headers) {
        const token = rawToken(header, { sub: `u${round}`, exp: NOW + 60 });
        const expected = await jose(token, checks);
        const got = fast(token, NOW_MS);
        if (expected === undefined) expect(got, JSON.stringify(header)).toBeUndefined();
        else expect(got, JSON.stringify(header)).toEqual(expected);
        if (got !== undefined) accepted++;
      }
    }
    // The plain header and the 70 with a kid, twice; the other three never.
    expect(accepted).toBe(2 * 71);
  });

  it('refuses a tampered token: changed payload, garbage after the signature, two dots too many', () => {
    const token = rawToken({ alg: 'HS256' }, good);
    const fast = createHs256FastPath(SECRET, {});
    const [header, , signature] = token.split('.');
    const forged = `${header}.${base64url.encode(JSON.stringify({ sub: 'admin', exp: NOW + 60 }))}.${signature}`;
    for (const bad of [forged, `${token}!`, `${token}AA`, `${token}.x`, token.slice(0, -2), '', '..', 'a.b.c']) {
      expect(fast(bad, NOW_MS), bad).toBeUndefined();
    }
  });
});
