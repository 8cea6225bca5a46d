import { signDevToken } from '../packages/server/src/adapters/auth/dev-token.js';

/**
 * The streams' tokens of a load process: user `u<userOffset + i>` each, subscribed to `broadcast`,
 * so every stream pays for verifying a token it has not seen (the verified-token cache never helps).
 */
export async function streamTokens(secret: string, userOffset: number, count: number): Promise<string[]> {
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    tokens.push(await signDevToken(secret, { userId: `u${userOffset + i}`, topics: ['broadcast'], expiresIn: 3600 }));
  }
  return tokens;
}
