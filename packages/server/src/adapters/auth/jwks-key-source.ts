import { createLocalJWKSet, errors, type JWTVerifyGetKey } from 'jose';
import { AppError } from '../../core/errors.js';

/** Options of {@link JwksKeySource}. */
export interface JwksKeySourceOptions {
  url: string;
  /** Longest wait for one fetch of the key set. Default 5 s. */
  timeoutMs?: number;
  /** A key set older than this is refetched in the background (tokens keep verifying meanwhile). Default 10 min. */
  maxAgeMs?: number;
  /** At most one fetch per this interval, whatever tokens arrive (a failed fetch waits as long). Default 30 s. */
  cooldownMs?: number;
  logger?: { warn(details: object, message: string): void };
  fetch?: typeof fetch;
  now?: () => number;
}

/** Why a key set could not be had; answered as 503 so that clients retry instead of giving up. */
export class AuthUnavailableError extends AppError {
  constructor(message: string, retryAfterSeconds: number, cause?: unknown) {
    super('auth_unavailable', message, { cause, headers: { 'retry-after': String(retryAfterSeconds) } });
    this.name = 'AuthUnavailableError';
  }
}

/**
 * The identity provider's keys for jose's `jwtVerify`, fetched from its JWKS URL. Unlike jose's
 * remote key set, a failed fetch never fails tokens the last good key set can verify: that set
 * keeps serving while the IdP is down, and a stale one is refreshed in the background. Only a
 * token the last good set cannot verify (a new `kid`, or no key set yet) while the IdP cannot be
 * reached gets {@link AuthUnavailableError}: the token may be fine, so it is a 503, not a 401.
 */
export class JwksKeySource {
  private keys: JWTVerifyGetKey | undefined;
  /** Counts the key sets fetched: a verified-token cache keeps an entry only while it is unchanged. */
  private keySetGeneration = 0;
  private fetchedAt = Number.NEGATIVE_INFINITY;
  private attemptedAt = Number.NEGATIVE_INFINITY;
  private lastFailure: unknown;
  private refreshing: Promise<void> | undefined;
  private readonly timeoutMs: number;
  private readonly maxAgeMs: number;
  private readonly cooldownMs: number;
  private readonly now: () => number;

  constructor(private readonly options: JwksKeySourceOptions) {
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.maxAgeMs = options.maxAgeMs ?? 600_000;
    this.cooldownMs = options.cooldownMs ?? 30_000;
    this.now = options.now ?? Date.now;
  }

  /**
   * Which key set verifies tokens now (a number that changes with every fetched set), or
   * undefined when tokens must go through {@link JwksKeySource.getKey}: no set yet, or it is due
   * for a refresh (getKey starts that). A token verified under one generation is trusted without
   * its signature being checked again only while this returns the same generation, so a key the
   * IdP withdraws stops verifying tokens exactly when it does without the cache.
   */
  currentGeneration(): number | undefined {
    if (this.keys === undefined || this.now() - this.fetchedAt >= this.maxAgeMs) return undefined;
    return this.keySetGeneration;
  }

  /** jose's key resolver: the key for a token's header. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    let keys = this.keys;
    if (keys === undefined) keys = await this.refreshNow();
    else if (this.now() - this.fetchedAt >= this.maxAgeMs && !this.isCoolingDown()) {
      this.refresh().catch(() => undefined);
    }
    try {
      return await keys(header, token);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
      // An unknown kid: the IdP may have rotated its keys. It is looked up at most once per
      // cool-down; until then the token may well be valid, so it is a 503 to retry, not a 401.
      // Absent from a key set fetched for this very token, it is a 401.
      if (this.isCoolingDown() && this.refreshing === undefined) throw this.unavailable();
      return (await this.refreshNow())(header, token);
    }
  };

  /** Refreshes (or joins a refresh in flight) and returns the fresh keys; throws 503 on failure. */
  private async refreshNow(): Promise<JWTVerifyGetKey> {
    if (this.isCoolingDown() && this.refreshing === undefined && this.lastFailure !== undefined) {
      throw this.unavailable();
    }
    await this.refresh().catch(() => undefined);
    if (this.lastFailure !== undefined || this.keys === undefined) throw this.unavailable();
    return this.keys;
  }

  private refresh(): Promise<void> {
    this.refreshing ??= this.fetchKeys().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async fetchKeys(): Promise<void> {
    this.attemptedAt = this.now();
    try {
      const response = await (this.options.fetch ?? fetch)(this.options.url, {
        headers: { accept: 'application/json, application/jwk-set+json' },
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      if (response.status !== 200) {
        await response.body?.cancel();
        throw new Error(`the JWKS URL answered HTTP ${response.status}`);
      }
      this.keys = createLocalJWKSet((await response.json()) as Parameters<typeof createLocalJWKSet>[0]);
      this.keySetGeneration++;
      this.fetchedAt = this.now();
      this.lastFailure = undefined;
    } catch (error) {
      this.lastFailure = error;
      this.options.logger?.warn(
        { err: error, url: this.options.url, servingLastGoodKeys: this.keys !== undefined },
        'could not fetch the identity provider’s keys (JWKS)',
      );
      throw error;
    }
  }

  private isCoolingDown(): boolean {
    return this.now() - this.attemptedAt < this.cooldownMs;
  }

  private unavailable(): AuthUnavailableError {
    const waitMs = Math.max(0, this.attemptedAt + this.cooldownMs - this.now());
    const message =
      this.lastFailure === undefined
        ? 'the token’s key is not in the identity provider’s key set fetched moments ago; retry shortly'
        : 'the identity provider’s keys cannot be fetched right now; retry shortly';
    return new AuthUnavailableError(message, Math.max(1, Math.ceil(waitMs / 1000)), this.lastFailure);
  }
}
