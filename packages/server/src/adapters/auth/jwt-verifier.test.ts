import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createJwtVerifier, VerifiedTokenCache } from './jwt-verifier.js';

const SECRET = 'jwt-verifier-test-secret-0123456789abcdef';

function sign(sub: string, expSeconds: number): Promise<string> {
  return new SignJWT({ topics: ['broadcast'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime(expSeconds)
    .sign(new TextEncoder().encode(SECRET));
}

describe('the verified-token cache', () => {
  it('answers a token verified before from the cache, and refuses it at its exp although cached', async () => {
    let now = 1_900_000_000_000;
    const verifier = createJwtVerifier({
      jwt: { kind: 'secret', secret: SECRET },
      maxLifetimeMs: 3_600_000,
      now: () => now,
    });
    const exp = now / 1000 + 60;
    const token = await sign('u1', exp);
    const first = await verifier.verify(token);
    expect(first).toMatchObject({ userId: 'u1', topics: ['broadcast'], expiresAt: exp * 1000 });
    now = exp * 1000 - 1;
    await expect(verifier.verify(token)).resolves.toBe(first);
    now = exp * 1000;
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: 'unauthorized', message: 'token has expired' });
    now = exp * 1000 + 60_000;
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: 'unauthorized' });
  });

  it('never remembers a refusal, and shares a principal nobody can change', async () => {
    const now = 1_900_000_000_000;
    const verifier = createJwtVerifier({
      jwt: { kind: 'secret', secret: SECRET },
      maxLifetimeMs: 3_600_000,
      now: () => now,
    });
    const token = await sign('u2', now / 1000 + 60);
    const forged = `${token.slice(0, -4)}AAAA`;
    for (let attempt = 0; attempt < 2; attempt++) {
      await expect(verifier.verify(forged)).rejects.toMatchObject({ code: 'unauthorized' });
    }
    const principal = await verifier.verify(token);
    expect(Object.isFrozen(principal) && Object.isFrozen(principal.topics)).toBe(true);
  });

  it('is bounded: past cacheMaxEntries the least recently used token is checked again', async () => {
    const now = 1_900_000_000_000;
    const verifier = createJwtVerifier({
      jwt: { kind: 'secret', secret: SECRET },
      maxLifetimeMs: 3_600_000,
      cacheMaxEntries: 2,
      now: () => now,
    });
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((sub) => sign(sub, now / 1000 + 60)));
    const first = { a: await verifier.verify(a!), b: await verifier.verify(b!) };
    await expect(verifier.verify(a!)).resolves.toBe(first.a); // a is now the most recently used
    const cPrincipal = await verifier.verify(c!); // evicts b
    await expect(verifier.verify(a!)).resolves.toBe(first.a);
    await expect(verifier.verify(c!)).resolves.toBe(cPrincipal);
    const bAgain = await verifier.verify(b!);
    expect(bAgain).not.toBe(first.b);
    expect(bAgain).toEqual(first.b);
  });

  it('VerifiedTokenCache holds at most maxEntries and drops entries of another key-set generation', () => {
    const cache = new VerifiedTokenCache(100, () => 0);
    const principal = { userId: 'u', topics: [], scopes: [], expiresAt: 1_000 };
    for (let i = 0; i < 1_000; i++) cache.set(`t${i}`, 1, principal);
    expect(cache.size).toBe(100);
    expect(cache.get('t0', 1)).toBeUndefined();
    expect(cache.get('t999', 1)).toBe(principal);
    expect(cache.get('t999', 2)).toBeUndefined();
    expect(cache.get('t999', 1)).toBeUndefined();
    cache.set('x', undefined, principal);
    expect(cache.get('x', undefined)).toBeUndefined();
  });
});
