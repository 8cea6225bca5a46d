import { ACCESS_TOKEN_COOKIE } from '@infinitescribe/protocol';
import type { FastifyRequest } from 'fastify';
import { AppError, UnauthorizedError } from '../../core/errors.js';
import type { JwtVerifier } from '../../adapters/auth/jwt-verifier.js';
import { PUBLISH_SCOPE, type Principal } from '../../core/principal.js';
import type { TicketStore } from '../../adapters/auth/ticket-store.js';

/** Which credentials a route accepts besides the Bearer header and the cookie. */
export interface CredentialOptions {
  /** One-time tickets open streams only (not polls, not API calls). */
  allowTicket: boolean;
}

const NO_TICKET: CredentialOptions = { allowTicket: false };

/** Methods that change nothing: a cookie may authenticate them from any site. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Turns a request's credentials into a principal: `Authorization: Bearer`, else `?ticket=` (when
 * allowed), else the `access_token` cookie. Never falls back to anonymous.
 */
export class Authenticator {
  /**
   * `allowedOrigins` (CORS_ORIGINS): sites besides the API's own whose pages may send
   * cookie-authenticated requests that change something.
   */
  constructor(
    private readonly verifier: JwtVerifier,
    private readonly tickets: TicketStore,
    private readonly allowedOrigins: readonly string[] = [],
  ) {}

  authenticate(request: FastifyRequest, options: CredentialOptions = NO_TICKET): Promise<Principal> {
    const header = request.headers.authorization;
    if (header === undefined) return this.authenticateWithoutHeader(request, options);
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match?.[1]) return Promise.reject(new UnauthorizedError('Authorization header must be "Bearer <token>"'));
    // The verifier's own promise: an async function returning it would wrap it in two more steps.
    return this.verifier.verify(match[1]);
  }

  /** The ticket, else the cookie ({@link Authenticator.authenticate} without an Authorization header). */
  private async authenticateWithoutHeader(request: FastifyRequest, options: CredentialOptions): Promise<Principal> {
    const query = request.query as Record<string, unknown> | undefined;
    const ticket = query?.['ticket'];
    if (options.allowTicket && typeof ticket === 'string' && ticket.length > 0) {
      const principal = await this.tickets.consume(ticket);
      if (!principal) throw new UnauthorizedError('ticket is unknown, expired or already used');
      if (principal.expiresAt <= Date.now()) throw new UnauthorizedError('the token behind this ticket has expired');
      return principal;
    }
    const cookie = request.cookies?.[ACCESS_TOKEN_COOKIE];
    if (typeof cookie === 'string' && cookie.length > 0) {
      if (this.isCrossSite(request)) {
        throw new AppError(
          'forbidden',
          'a cookie-authenticated request that changes something must come from this site or one in CORS_ORIGINS; ' +
            'other callers send a Bearer token',
        );
      }
      return this.verifier.verify(cookie);
    }
    throw new UnauthorizedError('missing credentials: send a Bearer token, a ticket or the access_token cookie');
  }

  /**
   * Whether a cookie-authenticated `request` that changes something was sent by another site's
   * page (cross-site request forgery: the browser adds the cookie by itself). Browsers say where
   * a request comes from: `Origin` on every cross-origin POST, `Sec-Fetch-Site` on modern ones;
   * a request with neither did not come from a browser page and is left alone.
   */
  private isCrossSite(request: FastifyRequest): boolean {
    if (SAFE_METHODS.has(request.method)) return false;
    const origin = request.headers.origin;
    if (origin !== undefined) {
      if (this.allowedOrigins.includes(origin)) return false;
      // Same host, any port or scheme: cookies are not kept apart by port either.
      return URL.parse(origin)?.hostname !== request.hostname;
    }
    const site = request.headers['sec-fetch-site'];
    return site !== undefined && site !== 'same-origin' && site !== 'none';
  }

  /** Like {@link Authenticator.authenticate}, and requires the `events:publish` scope. */
  async authenticatePublisher(request: FastifyRequest): Promise<Principal> {
    const principal = await this.authenticate(request);
    if (!principal.scopes.includes(PUBLISH_SCOPE)) {
      throw new AppError('forbidden', `publishing needs the "${PUBLISH_SCOPE}" scope`);
    }
    return principal;
  }
}
