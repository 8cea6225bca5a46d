import { createHmac } from 'node:crypto';
import { signDevToken } from '../packages/server/src/adapters/auth/dev-token.js';

/**
 * One token per stream, signed up front: user `u<userOffset + i>` each, subscribed to `broadcast`
 * (a storm client reconnects with its stream's token, which the surviving instance never saw).
 */
export async function streamTokens(secret: string, userOffset: number, count: number): Promise<string[]> {
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    tokens.push(await signDevToken(secret, { userId: `u${userOffset + i}`, topics: ['broadcast'], expiresIn: 3600 }));
  }
  return tokens;
}

/**
 * A new token for every stream a load process opens, as {@link signDevToken} signs them (HS256,
 * `sub`, `topics`, `iat`, `exp` an hour ahead), signed here synchronously: user
 * `u<generator>-<n>`, n counting up. No token is sent twice, so every stream opened pays for
 * verifying a token the server has not seen, as after a deploy or in a reconnect storm; reusing a
 * fixed set across a run's phases let the server's verified-token cache answer the later phases.
 */
export function freshStreamTokens(secret: string, generator: number): () => string {
  const key = Buffer.from(secret);
  const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
  let next = 0;
  return () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { topics: ['broadcast'], sub: `u${generator}-${next++}`, iat: now, exp: now + 3600 };
    const body = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    return `${body}.${createHmac('sha256', key).update(body).digest('base64url')}`;
  };
}
