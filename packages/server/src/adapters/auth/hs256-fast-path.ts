import { createHmac, timingSafeEqual } from 'node:crypto';
import type { JWTPayload } from 'jose';

/** The checks jose's jwtVerify is asked for, which the fast path must apply exactly as it does. */
export interface Hs256Checks {
  issuer?: string;
  audience?: string;
  typ?: string;
}

/** Header parameters the fast path understands; any other (`crit`, `b64`, `jku`…) goes to jose. */
const PLAIN_HEADER = new Set(['alg', 'typ', 'kid']);
const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** jose decodes strictly: text that is not UTF-8 makes it refuse the token, so here too. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * HS256 verification with node:crypto, for the common token only. jose verifies through WebCrypto,
 * whose HMAC is an asynchronous job costing ~0.25 ms of the event loop per token on the benchmark
 * machine — the largest part of opening a stream, and a queue when thousands open at once (a
 * reconnect storm). A synchronous HMAC costs a few µs.
 *
 * It never decides a refusal: it returns the payload only for a token jose would accept with the
 * same checks (signature, `alg` HS256, no header parameter beyond alg/typ/kid, numeric `exp` in
 * the future, `nbf`/`iat` as jose checks them, and the configured `iss`, `aud`, `typ`), and
 * `undefined` for everything else, which the caller hands to jose for the authoritative answer
 * and its error message. `nowMs` is the verifier's clock (jose's `currentDate`).
 */
export function createHs256FastPath(
  secret: Uint8Array,
  checks: Hs256Checks,
): (token: string, nowMs: number) => JWTPayload | undefined {
  const key = Buffer.from(secret);
  const wantedTyp = checks.typ === undefined ? undefined : normalizeTyp(checks.typ);
  /**
   * Whether a header (its base64url text) passes the checks: a pure function of that text, and one
   * issuer's tokens share one header, so it is decoded once, not once per token. Bounded: headers
   * that vary (a `kid` per key, at most a few) fit; past the bound it starts over.
   */
  const headerVerdicts = new Map<string, boolean>();
  const headerPasses = (headerPart: string): boolean => {
    const known = headerVerdicts.get(headerPart);
    if (known !== undefined) return known;
    const verdict = checkHeader(parseObject(headerPart), wantedTyp);
    if (headerVerdicts.size >= MAX_HEADER_VERDICTS) headerVerdicts.clear();
    headerVerdicts.set(headerPart, verdict);
    return verdict;
  };
  return (token, nowMs) => {
    const firstDot = token.indexOf('.');
    const secondDot = token.indexOf('.', firstDot + 1);
    if (firstDot <= 0 || secondDot <= firstDot + 1 || token.indexOf('.', secondDot + 1) !== -1) return undefined;
    const headerPart = token.slice(0, firstDot);
    const payloadPart = token.slice(firstDot + 1, secondDot);
    const signaturePart = token.slice(secondDot + 1);
    if (!BASE64URL.test(headerPart) || !BASE64URL.test(payloadPart) || !BASE64URL.test(signaturePart)) return undefined;
    const signature = Buffer.from(signaturePart, 'base64url');
    const expected = createHmac('sha256', key).update(token.slice(0, secondDot)).digest();
    if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) return undefined;
    if (!headerPasses(headerPart)) return undefined;
    const payload = parseObject(payloadPart) as JWTPayload | undefined;
    if (payload === undefined) return undefined;
    const now = Math.floor(nowMs / 1000);
    const { exp, nbf, iat, iss, aud } = payload;
    if (typeof exp !== 'number' || !Number.isFinite(exp) || exp <= now) return undefined;
    if (nbf !== undefined && (typeof nbf !== 'number' || !Number.isFinite(nbf) || nbf > now)) return undefined;
    if (iat !== undefined && (typeof iat !== 'number' || !Number.isFinite(iat))) return undefined;
    if (checks.issuer !== undefined && iss !== checks.issuer) return undefined;
    if (checks.audience !== undefined) {
      const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
      if (!audiences.includes(checks.audience)) return undefined;
    }
    return payload;
  };
}

/** Distinct headers whose verdict is remembered (see `headerVerdicts`). */
const MAX_HEADER_VERDICTS = 64;

/** `alg` HS256, no parameter beyond alg/typ/kid, and the wanted `typ` when one is configured. */
function checkHeader(header: Record<string, unknown> | undefined, wantedTyp: string | undefined): boolean {
  if (header === undefined || header['alg'] !== 'HS256') return false;
  for (const name of Object.keys(header)) if (!PLAIN_HEADER.has(name)) return false;
  return wantedTyp === undefined || (typeof header['typ'] === 'string' && normalizeTyp(header['typ']) === wantedTyp);
}

function parseObject(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(UTF8.decode(Buffer.from(part, 'base64url')));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** jose's rule: `at+jwt` and `application/at+jwt` are the same type, compared case-insensitively. */
function normalizeTyp(value: string): string {
  const lower = value.toLowerCase();
  return value.includes('/') ? lower : `application/${lower}`;
}
