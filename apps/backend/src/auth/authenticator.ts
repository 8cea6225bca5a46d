import { ACCESS_TOKEN_COOKIE } from '@infinitescribe/protocol';
import type { FastifyRequest } from 'fastify';
import { AppError, UnauthorizedError } from '../errors.js';
import type { JwtVerifier } from './jwt-verifier.js';
import { PUBLISH_SCOPE, type Principal } from './principal.js';
import type { TicketStore } from './ticket-store.js';

/** Which credentials a route accepts besides the Bearer header and the cookie. */
export interface CredentialOptions {
  /** One-time tickets open streams only (not polls, not API calls). */
  allowTicket: boolean;
}

/**
 * Turns a request's credentials into a principal: `Authorization: Bearer`, else `?ticket=` (when
 * allowed), else the `access_token` cookie. Never falls back to anonymous.
 */
export class Authenticator {
  constructor(
    private readonly verifier: JwtVerifier,
    private readonly tickets: TicketStore,
  ) {}

  async authenticate(request: FastifyRequest, options: CredentialOptions = { allowTicket: false }): Promise<Principal> {
    const header = request.headers.authorization;
    if (header !== undefined) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!match?.[1]) throw new UnauthorizedError('Authorization header must be "Bearer <token>"');
      return this.verifier.verify(match[1]);
    }
    const query = request.query as Record<string, unknown> | undefined;
    const ticket = query?.['ticket'];
    if (options.allowTicket && typeof ticket === 'string' && ticket.length > 0) {
      const principal = await this.tickets.consume(ticket);
      if (!principal) throw new UnauthorizedError('ticket is unknown, expired or already used');
      if (principal.expiresAt <= Date.now()) throw new UnauthorizedError('the token behind this ticket has expired');
      return principal;
    }
    const cookie = request.cookies?.[ACCESS_TOKEN_COOKIE];
    if (typeof cookie === 'string' && cookie.length > 0) return this.verifier.verify(cookie);
    throw new UnauthorizedError('missing credentials: send a Bearer token, a ticket or the access_token cookie');
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
