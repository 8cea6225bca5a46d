import { SignJWT } from 'jose';
import { PUBLISH_TOPICS_CLAIM } from '../../core/publish-topics.js';

/** Claims of a development token. */
export interface DevTokenClaims {
  userId: string;
  topics?: string[];
  scope?: string;
  /** Patterns of the `publish_topics` claim (publish-topics.ts). */
  publishTopics?: string[];
  /** Lifetime in seconds. */
  expiresIn: number;
}

/** Signs an HS256 access token as the dev login hands out (and as tests and benchmarks need). */
export async function signDevToken(secret: string, claims: DevTokenClaims): Promise<string> {
  const jwt = new SignJWT({
    ...(claims.topics ? { topics: claims.topics } : {}),
    ...(claims.scope ? { scope: claims.scope } : {}),
    ...(claims.publishTopics ? { [PUBLISH_TOPICS_CLAIM]: claims.publishTopics } : {}),
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.userId)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + claims.expiresIn);
  return jwt.sign(new TextEncoder().encode(secret));
}
