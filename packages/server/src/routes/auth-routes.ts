import type { FastifyInstance } from 'fastify';
import type { RealtimeSettings } from '../core/settings.js';
import { AppError } from '../core/errors.js';
import { FixedWindowLimit } from '../core/fixed-window-limit.js';
import { devTokenRequest } from './api-schemas.js';
import { parseInput } from './parse-input.js';
import type { Authenticator } from '../services/auth/authenticator.js';
import { signDevToken } from '../adapters/auth/dev-token.js';
import type { TicketStore } from '../adapters/auth/ticket-store.js';

/** Options of {@link registerAuthRoutes}. */
export interface AuthRoutesOptions {
  config: Readonly<RealtimeSettings>;
  authenticator: Authenticator;
  tickets: TicketStore;
}

/** `POST /api/auth/dev-token` (dev login only) and `POST /api/sse/ticket`. */
export function registerAuthRoutes(app: FastifyInstance, options: AuthRoutesOptions): void {
  const { config, authenticator, tickets } = options;
  const { jwt } = config;
  if (config.devLogin && jwt.kind === 'secret') {
    app.log.warn(
      'DEV LOGIN IS ON: POST /api/auth/dev-token signs a token for any user, topics and scope, for anyone ' +
        'who can reach this server. Turn devLogin (AUTH_DEV_LOGIN) off unless this is a development machine.',
    );
    app.post('/api/auth/dev-token', async (request) => {
      const body = parseInput(devTokenRequest, request.body ?? {});
      const expiresIn = body.expiresIn ?? Math.min(3600, Math.floor(config.jwtMaxLifetimeMs / 1000));
      if (expiresIn * 1000 > config.jwtMaxLifetimeMs) {
        throw new AppError('invalid_request', `expiresIn is longer than JWT_MAX_LIFETIME_MS allows`);
      }
      const accessToken = await signDevToken(jwt.secret, { ...body, expiresIn });
      return { accessToken, expiresIn };
    });
  }

  // Each ticket is held (in memory or Redis) until it expires: issuing them is throttled per user.
  const issued = new FixedWindowLimit({ max: config.ticketRateMax, windowMs: config.ticketRateWindowMs });
  app.post('/api/sse/ticket', async (request) => {
    const principal = await authenticator.authenticate(request);
    const decision = issued.take(principal.userId);
    if (!decision.ok) {
      throw new AppError(
        'rate_limited',
        `at most ${config.ticketRateMax} tickets per ${config.ticketRateWindowMs} ms per user`,
        { headers: FixedWindowLimit.retryAfterHeader(decision) },
      );
    }
    const ticket = await tickets.issue(principal, config.ticketTtlMs);
    return { ticket, expiresIn: Math.round(config.ticketTtlMs / 1000) };
  });
}
