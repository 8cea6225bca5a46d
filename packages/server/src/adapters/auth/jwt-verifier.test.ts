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
  it('answers a token verified twice from the cache, and refuses it at its exp although cached', async () => {
    let now = 1_900_000_000_000;
    const verifier = createJwtVerifier({
      jwt: { kind: 'secret', secret: SECRET },
      maxLifetimeMs: 3_600_000,
      now: () => now,
    });
    const exp = now / 1000 + 60;
    const token = await sign('u1', exp);
    const once = await verifier.verify(token);
    expect(once).toMatchObject({ userId: 'u1', topics: ['broadcast'], expiresAt: exp * 1000 });
    // Seen once: checked again, and remembered this time.
    const twice = await verifier.verify(token);
    expect(twice).not.toBe(once);
    expect(twice).toEqual(once);
    now = exp * 1000 - 1;
    await expect(verifier.verify(token)).resolves.toBe(twice);
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
    // The second verification of each lets it in (see the next test).
    await verifier.verify(a!);
    await verifier.verify(b!);
    const first = { a: await verifier.verify(a!), b: await verifier.verify(b!) };
    await expect(verifier.verify(a!)).resolves.toBe(first.a); // a is now the most recently used
    await verifier.verify(c!);
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
    for (let i = 0; i < 1_000; i++) {
      cache.set(`t${i}`, 1, principal);
      cache.set(`t${i}`, 1, principal);
    }
    expect(cache.size).toBe(100);
    expect(cache.get('t0', 1)).toBeUndefined();
    expect(cache.get('t999', 1)).toBe(principal);
    expect(cache.get('t999', 2)).toBeUndefined();
    expect(cache.get('t999', 1)).toBeUndefined();
    cache.set('x', undefined, principal);
    expect(cache.get('x', undefined)).toBeUndefined();
  });

  it('lets a token in on its second verification only, within the last maxEntries seen once', () => {
    const cache = new VerifiedTokenCache(100, () => 0);
    const principal = { userId: 'u', topics: [], scopes: [], expiresAt: 1_000 };
    // Every token of a storm seen once: no entry at all.
    for (let i = 0; i < 1_000; i++) cache.set(`storm-token-${i}`, 1, principal);
    expect(cache.size).toBe(0);
    // The last of them, verified again: in.
    cache.set('storm-token-999', 1, principal);
    expect(cache.get('storm-token-999', 1)).toBe(principal);
    // A token seen once, then 100 others seen once: forgotten, so its next verification is a first again.
    cache.set('early', 1, principal);
    for (let i = 0; i < 100; i++) cache.set(`later-token-${i}`, 1, principal);
    cache.set('early', 1, principal);
    expect(cache.get('early', 1)).toBeUndefined();
    cache.set('early', 1, principal);
    expect(cache.get('early', 1)).toBe(principal);
    // Tokens differing only before their last 8 characters are told apart by the cache's own key.
    cache.set('AAAA.same-end', 1, principal);
    cache.set('BBBB.same-end', 1, { ...principal, userId: 'other' });
    expect(cache.get('AAAA.same-end', 1)).toBeUndefined();
    expect(cache.get('BBBB.same-end', 1)).toMatchObject({ userId: 'other' });
  });
});
