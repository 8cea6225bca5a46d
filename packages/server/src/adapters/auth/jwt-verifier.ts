import { errors, jwtVerify, type CryptoKey, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { isServableUserId, USER_ID_MAX_LENGTH } from '@infinitescribe/protocol';
import type { JwtSettings } from '../../core/settings.js';
import { AppError, UnauthorizedError } from '../../core/errors.js';
import { JwksKeySource, type JwksKeySourceOptions } from './jwks-key-source.js';
import type { Principal } from '../../core/principal.js';
import { createHs256FastPath } from './hs256-fast-path.js';
import { PUBLISH_TOPICS_CLAIM, readPublishTopicsClaim } from '../../core/publish-topics.js';

/** Verifies access tokens into principals. */
export interface JwtVerifier {
  /**
   * @throws UnauthorizedError for a malformed, forged or expired token, one missing `sub`/`exp`,
   *   or one living longer than allowed.
   * @throws AuthUnavailableError (503) when the JWKS cannot be fetched to check a token.
   */
  verify(token: string): Promise<Principal>;
}

/** Options of {@link createJwtVerifier}. */
export interface JwtVerifierOptions {
  jwt: JwtSettings;
  issuer?: string;
  audience?: string;
  /** Required `typ` header (e.g. `at+jwt`, RFC 9068); unset: not checked. */
  typ?: string;
  /** A token whose `exp` is further ahead than this is refused: a stolen one must not work for ever. */
  maxLifetimeMs: number;
  /** Tuning of the JWKS key source (JWKS mode). */
  jwks?: Omit<JwksKeySourceOptions, 'url'>;
  /** Verified tokens remembered (see {@link VerifiedTokenCache}); 0 turns the cache off. Default 10,000. */
  cacheMaxEntries?: number;
  now?: () => number;
}

/** Default of {@link JwtVerifierOptions.cacheMaxEntries}. */
export const DEFAULT_TOKEN_CACHE_ENTRIES = 10_000;

/**
 * The principals of recently verified tokens, keyed by the raw token, least recently used first
 * out. A signature check (an HMAC, or RSA/ECDSA with a JWKS) and the claim checks are pure
 * functions of the token's bytes and the keys, so the same token need not be checked twice while
 * the keys stay the same: a publisher sends one token with every publish, a client reconnects and
 * refreshes with the one it has. What does change with time is honoured on every hit: an entry is
 * used only before the token's `exp` (jose refuses a token at `exp`, and so does the cache), and
 * in JWKS mode only under the key set that verified it ({@link JwksKeySource.currentGeneration}).
 * Failures are never remembered.
 *
 * A token is remembered the second time it is verified, not the first: most tokens that open a
 * stream are seen once by an instance (a reconnect storm brings thousands of tokens it never saw),
 * and an entry for each made every such verification twice as expensive (the LRU insert and
 * eviction, and the principal kept alive, copied by each young-generation GC during a connect
 * burst). Tokens verified once are noted as a number each (a fingerprint of the signature's end,
 * in a ring of `maxEntries`), which keeps no string alive; a fingerprint collision only lets a
 * token in one verification early, never answers for another token.
 */
export class VerifiedTokenCache {
  private readonly entries = new Map<string, { principal: Principal; generation: number }>();
  /** Fingerprints of tokens verified once since they were last let in, oldest overwritten first. */
  private readonly seenOnce = new Set<number>();
  private readonly seenRing: Int32Array;
  private seenAt = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number,
  ) {
    this.seenRing = new Int32Array(Math.max(0, maxEntries)).fill(-1);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The principal of `token` verified under key set `generation`, if it is still good now. */
  get(token: string, generation: number | undefined): Principal | undefined {
    const entry = this.entries.get(token);
    if (entry === undefined) return undefined;
    if (generation === undefined || entry.generation !== generation || this.now() >= entry.principal.expiresAt) {
      this.entries.delete(token);
      return undefined;
    }
    // Most recently used goes last: a Map iterates in insertion order, so the first key is the LRU one.
    this.entries.delete(token);
    this.entries.set(token, entry);
    return entry.principal;
  }

  /** Remembers `token`'s principal if this is the second time it is verified (see the class). */
  set(token: string, generation: number | undefined, principal: Principal): void {
    if (this.maxEntries <= 0 || generation === undefined) return;
    if (!this.entries.has(token) && !this.seenBefore(token)) return;
    this.entries.delete(token);
    this.entries.set(token, { principal, generation });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
  }

  /** Whether `token` was verified once already (and not let in since); notes it if not. */
  private seenBefore(token: string): boolean {
    const fingerprint = signatureFingerprint(token);
    if (this.seenOnce.delete(fingerprint)) return true;
    const overwritten = this.seenRing[this.seenAt] ?? -1;
    if (overwritten !== -1) this.seenOnce.delete(overwritten);
    this.seenRing[this.seenAt] = fingerprint;
    this.seenAt = (this.seenAt + 1) % this.seenRing.length;
    this.seenOnce.add(fingerprint);
    return false;
  }
}

/**
 * A 30-bit number from the last 8 characters of a verified token: its signature's end, as random
 * as a signature is. 30 bits keep it a small integer in V8 (no heap number per entry).
 */
function signatureFingerprint(token: string): number {
  let hash = 0;
  for (let i = Math.max(0, token.length - 8); i < token.length; i++) {
    hash = (Math.imul(hash, 31) + token.charCodeAt(i)) | 0;
  }
  return hash & 0x3fffffff;
}

/**
 * HS256 with a shared secret, or RS256/ES256 against a JWKS URL (jwks-key-source.ts: cached, the
 * last good key set keeps serving while the identity provider is unreachable).
 */
export function createJwtVerifier(options: JwtVerifierOptions): JwtVerifier {
  const { jwt, maxLifetimeMs } = options;
  const now = options.now ?? Date.now;
  // Imported once: handed raw bytes, jose would re-import the HMAC key on every verify, which was
  // the largest CPU cost of opening a stream and of a publish in the benchmark.
  let jwks: JwksKeySource | undefined;
  let key: Promise<CryptoKey> | JWTVerifyGetKey;
  let fastPath: ReturnType<typeof createHs256FastPath> | undefined;
  if (jwt.kind === 'secret') {
    fastPath = createHs256FastPath(new TextEncoder().encode(jwt.secret), {
      ...(options.issuer ? { issuer: options.issuer } : {}),
      ...(options.audience ? { audience: options.audience } : {}),
      ...(options.typ ? { typ: options.typ } : {}),
    });
    key = crypto.subtle.importKey(
      'raw',
      new TextEncoder().encode(jwt.secret),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['verify'],
    );
  } else {
    jwks = new JwksKeySource({ ...options.jwks, url: jwt.url });
    key = jwks.getKey;
  }
  // A shared secret never changes under a running verifier: one generation for ever.
  const generation = () => (jwks === undefined ? 0 : jwks.currentGeneration());
  const cache = new VerifiedTokenCache(options.cacheMaxEntries ?? DEFAULT_TOKEN_CACHE_ENTRIES, now);
  const verifyOptions = {
    algorithms: jwt.kind === 'secret' ? ['HS256'] : ['RS256', 'ES256'],
    requiredClaims: ['sub', 'exp'],
    ...(options.issuer ? { issuer: options.issuer } : {}),
    ...(options.audience ? { audience: options.audience } : {}),
    ...(options.typ ? { typ: options.typ } : {}),
  };
  const verifyWithJose = async (token: string): Promise<JWTPayload> => {
    try {
      // The verifier's clock, not jose's own: the cache and the check agree on when a token expires.
      const checks = { ...verifyOptions, currentDate: new Date(now()) };
      // jose's overloads split on the key's type, so the two kinds are called separately.
      const result =
        key instanceof Promise ? await jwtVerify(token, await key, checks) : await jwtVerify(token, key, checks);
      return result.payload;
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw new UnauthorizedError(describeJoseError(error), error);
    }
  };
  return {
    async verify(token) {
      const cached = cache.get(token, generation());
      if (cached !== undefined) return cached;
      // Read before verifying: a key set fetched during the check must not vouch for this result.
      const verifiedUnder = generation();
      const payload = fastPath?.(token, now()) ?? (await verifyWithJose(token));
      const principal = toPrincipal(payload);
      if (principal.expiresAt - now() > maxLifetimeMs) {
        throw new UnauthorizedError(
          `token lives too long: its exp is more than ${Math.round(maxLifetimeMs / 1000)} s ahead (JWT_MAX_LIFETIME_MS)`,
        );
      }
      // Frozen: every request with this token shares the object.
      Object.freeze(principal.topics);
      Object.freeze(principal.scopes);
      if (principal.publishTopics) Object.freeze(principal.publishTopics);
      cache.set(token, verifiedUnder, Object.freeze(principal));
      return principal;
    },
  };
}

function toPrincipal(payload: JWTPayload): Principal {
  const { sub, exp } = payload;
  if (typeof sub !== 'string' || sub.length === 0 || typeof exp !== 'number') {
    throw new UnauthorizedError('token must carry a string `sub` and a numeric `exp`');
  }
  if (!isServableUserId(sub)) {
    throw new UnauthorizedError(
      `token subject cannot be served: a \`sub\` must be 1 to ${USER_ID_MAX_LENGTH} characters, without ` +
        'commas, whitespace, control or invisible characters',
    );
  }
  const topicsClaim: unknown = payload['topics'];
  if (topicsClaim !== undefined && !(Array.isArray(topicsClaim) && topicsClaim.every((t) => typeof t === 'string'))) {
    throw new UnauthorizedError('token claim `topics` must be an array of strings');
  }
  const scopeClaim: unknown = payload['scope'];
  if (scopeClaim !== undefined && typeof scopeClaim !== 'string') {
    throw new UnauthorizedError('token claim `scope` must be a space-separated string');
  }
  const publishTopics = readPublishTopicsClaim(payload[PUBLISH_TOPICS_CLAIM]);
  if ('problem' in publishTopics) throw new UnauthorizedError(publishTopics.problem);
  return {
    userId: sub,
    topics: (topicsClaim as string[] | undefined) ?? [],
    scopes: scopeClaim ? scopeClaim.split(' ').filter((scope) => scope.length > 0) : [],
    ...(publishTopics.patterns === undefined ? {} : { publishTopics: publishTopics.patterns }),
    expiresAt: exp * 1000,
  };
}

function describeJoseError(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'token has expired';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'token signature is invalid';
  if (error instanceof errors.JWTClaimValidationFailed) return `token claim check failed: ${error.message}`;
  if (error instanceof errors.JOSEAlgNotAllowed) return 'token algorithm is not allowed';
  if (error instanceof errors.JWKSNoMatchingKey) return 'no key in the JWKS matches the token';
  if (error instanceof errors.JOSEError) return `token is invalid: ${error.code}`;
  return 'token could not be verified';
}
