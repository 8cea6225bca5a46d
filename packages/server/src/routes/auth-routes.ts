import type { FastifyBaseLogger } from 'fastify';
import type { RealtimeSettings } from '../core/settings.js';
import { AppError } from '../core/errors.js';
import { FixedWindowLimit } from '../core/fixed-window-limit.js';
import { devTokenRequest, devTokenResponse, ticketResponse } from './api-schemas.js';
import type { Authenticator } from '../services/auth/authenticator.js';
import { signDevToken } from '../adapters/auth/dev-token.js';
import type { TicketStore } from '../adapters/auth/ticket-store.js';
import { AUTH_ERRORS, CROSS_SITE_ERRORS, USER_AUTH, defineRoute, type RouteDefinition } from './route-definition.js';

/** Options of {@link authRoutes}. */
export interface AuthRoutesOptions {
  config: Readonly<RealtimeSettings>;
  authenticator: Authenticator;
  tickets: TicketStore;
  log: FastifyBaseLogger;
}

/** `POST /api/auth/dev-token` (dev login only) and `POST /api/sse/ticket`. */
export function authRoutes(options: AuthRoutesOptions): RouteDefinition[] {
  const { config, authenticator, tickets } = options;
  const { jwt } = config;
  const routes: RouteDefinition[] = [];
  if (config.devLogin && jwt.kind === 'secret') {
    options.log.warn(
      'DEV LOGIN IS ON: POST /api/auth/dev-token signs a token for any user, topics and scope, for anyone ' +
        'who can reach this server. Turn devLogin (AUTH_DEV_LOGIN) off unless this is a development machine.',
    );
    routes.push(
      defineRoute({
        method: 'POST',
        url: '/api/auth/dev-token',
        operationId: 'createDevToken',
        tag: 'auth',
        summary: 'Sign a development access token',
        description:
          'Registered only with AUTH_DEV_LOGIN (default outside NODE_ENV=production) in HS256 mode. ' +
          'Signs with JWT_SECRET; never expose it in production.',
        credentials: [],
        body: {
          schema: devTokenRequest,
          example: { userId: 'u1', scope: 'events:publish' },
          emptyAsObject: true,
        },
        answers: { 200: { description: 'A signed token.', schema: devTokenResponse } },
        errors: ['invalid_json', 'invalid_request'],
        handler: async ({ body }) => {
          const expiresIn = body.expiresIn ?? Math.min(3600, Math.floor(config.jwtMaxLifetimeMs / 1000));
          if (expiresIn * 1000 > config.jwtMaxLifetimeMs) {
            throw new AppError('invalid_request', `expiresIn is longer than JWT_MAX_LIFETIME_MS allows`);
          }
          const accessToken = await signDevToken(jwt.secret, { ...body, expiresIn });
          return { accessToken, expiresIn };
        },
      }),
    );
  }

  // Each ticket is held (in memory or Redis) until it expires: issuing them is throttled per user.
  const issued = new FixedWindowLimit({ max: config.ticketRateMax, windowMs: config.ticketRateWindowMs });
  routes.push(
    defineRoute({
      method: 'POST',
      url: '/api/sse/ticket',
      operationId: 'createStreamTicket',
      tag: 'auth',
      summary: 'Exchange the token for a one-time stream ticket',
      description:
        'For the browser EventSource, which cannot send headers: the ticket opens one stream ' +
        '(`GET /api/sse/stream?ticket=`) with the same user and topics, once, within TICKET_TTL_MS. ' +
        'Tickets do not open polls or call the API. Empty body.',
      credentials: USER_AUTH,
      authenticate: (request) => authenticator.authenticate(request),
      answers: { 200: { description: 'A ticket.', schema: ticketResponse } },
      errors: [...AUTH_ERRORS, ...CROSS_SITE_ERRORS, 'rate_limited', 'bus_unavailable'],
      handler: async ({ principal }) => {
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
      },
    }),
  );
  return routes;
}
