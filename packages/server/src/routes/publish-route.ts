import type { PublishResponse } from '@infinitescribe/protocol';
import type { FastifyInstance } from 'fastify';
import type { Authenticator } from '../services/auth/authenticator.js';
import type { Principal } from '../core/principal.js';
import type { RealtimeSettings } from '../core/settings.js';
import { AppError } from '../core/errors.js';
import { createIdempotencyHooks } from './idempotency-hooks.js';
import type { IdempotencyStore } from '../adapters/idempotency/idempotency-store.js';
import { publishRequest } from './api-schemas.js';
import { parseInput } from './parse-input.js';
import { formatEventId } from '../core/event-id.js';
import type { EventPublisher } from '../services/events/event-publisher.js';
import { FixedWindowLimit } from '../core/fixed-window-limit.js';
import { NewTopicBudget } from '../services/events/new-topic-budget.js';
import { assertJsonPayload } from '../services/events/payload-json.js';
import { assertMayPublish } from '../services/events/publish-permissions.js';
import { createPublishLimits, isService } from './publish-limits.js';

/** A publish body over 64 KiB is a 413 (docs/http-api.md). */
export const MAX_PUBLISH_BODY_BYTES = 64 * 1024;

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the publish route's authentication, read by its rate limits and idempotency keys. */
    publisher?: Principal;
  }
}

/** Options of {@link registerPublishRoute}. */
export interface PublishRouteOptions {
  config: Readonly<RealtimeSettings>;
  authenticator: Authenticator;
  publisher: EventPublisher;
  /** Where `Idempotency-Key`s are kept, per publisher (see idempotency/idempotency-hooks.ts). */
  idempotencyKeys: IdempotencyStore;
}

/** `POST /api/events`: 202 once fanned out, 201 once a critical event is stored. */
export async function registerPublishRoute(app: FastifyInstance, options: PublishRouteOptions): Promise<void> {
  const { config, authenticator, publisher } = options;
  const newTopics = new NewTopicBudget({
    max: config.publishNewTopicsMax,
    windowMs: config.publishNewTopicsWindowMs,
    rememberMs: config.hotLogMaxAgeMs,
  });
  const limits = await createPublishLimits(app, config);
  const idempotency = createIdempotencyHooks({
    store: options.idempotencyKeys,
    scopeOf: (request) => request.publisher?.userId ?? '',
    logger: app.log,
  });
  app.post(
    '/api/events',
    {
      bodyLimit: MAX_PUBLISH_BODY_BYTES,
      preValidation: async (request) => {
        request.publisher = await authenticator.authenticatePublisher(request);
      },
      // After authentication: limits are per token and topic, keys per publisher.
      preHandler: [...limits, idempotency.preHandler],
      onSend: idempotency.onSend,
    },
    async (request, reply): Promise<PublishResponse> => {
      if (request.body === undefined) throw new AppError('invalid_event', 'body must be a JSON object');
      const body = parseInput(publishRequest, request.body, 'invalid_event');
      // Before anything looks at the payload (the publisher checks again, for in-process publishes).
      assertJsonPayload(body.payload);
      const principal = request.publisher as Principal;
      assertMayPublish(principal, body);
      // Service tokens publish for many users, under their own rate: no new-topic budget.
      const admission = isService(principal) ? { ok: true as const } : newTopics.admit(principal.userId, body.topic);
      if (!admission.ok) {
        throw new AppError(
          'rate_limited',
          `at most ${config.publishNewTopicsMax} new topics per ${config.publishNewTopicsWindowMs} ms per publisher`,
          { headers: FixedWindowLimit.retryAfterHeader(admission) },
        );
      }
      const record = await publisher.publish(body);
      reply.code(record.critical ? 201 : 202);
      return { id: formatEventId(record.id) };
    },
  );
}
