import type { PublishResponse } from '@infinitescribe/protocol';
import type { FastifyInstance } from 'fastify';
import type { Authenticator } from '../services/auth/authenticator.js';
import type { Principal } from '../core/principal.js';
import type { RealtimeSettings } from '../core/settings.js';
import { AppError } from '../core/errors.js';
import { createIdempotencyHooks } from './idempotency-hooks.js';
import type { IdempotencyStore } from '../adapters/idempotency/idempotency-store.js';
import { publishHeaders, publishRequest, publishResponse } from './api-schemas.js';
import { AUTH_ERRORS, USER_AUTH, defineRoute, type RouteDefinition } from './route-definition.js';
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

/** Options of {@link publishRoutes}. */
export interface PublishRouteOptions {
  config: Readonly<RealtimeSettings>;
  authenticator: Authenticator;
  publisher: EventPublisher;
  /** Where `Idempotency-Key`s are kept, per publisher (see idempotency/idempotency-hooks.ts). */
  idempotencyKeys: IdempotencyStore;
}

/** `POST /api/events`: 202 once fanned out, 201 once a critical event is stored. */
export async function publishRoutes(app: FastifyInstance, options: PublishRouteOptions): Promise<RouteDefinition[]> {
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
  const route = defineRoute({
    method: 'POST',
    url: '/api/events',
    operationId: 'publishEvent',
    tag: 'events',
    summary: 'Publish an event',
    description:
      'Needs the `events:publish` scope. The payload must pass its type’s schema (see ' +
      '`PublishRequest`). 202 once fanned out; with `critical: true`, 201 only once stored ' +
      'durably. Body at most 64 KiB. Per PUBLISH_RATE_WINDOW_MS: PUBLISH_RATE_MAX per user token, ' +
      'PUBLISH_RATE_MAX_SERVICE per service token (scope `events:service`), PUBLISH_TOPIC_RATE_MAX per ' +
      'topic. With `Idempotency-Key`, a retry within 24 h gets the first answer again (same status ' +
      'and id, header `Idempotent-Replayed: true`) and the event exists once. Server-emitted types ' +
      '(`ai.generation.*`, `task.*`) are refused (403 `forbidden_type`); a token with a ' +
      '`publish_topics` claim publishes only to the topics its patterns match.',
    credentials: USER_AUTH,
    headers: publishHeaders,
    body: {
      schema: publishRequest,
      // One variant per publishable type of the catalogue (the host's own included), built by /docs.
      document: { ref: 'PublishRequest' },
      invalidCode: 'invalid_event',
      example: { topic: 'user:u1', type: 'notification', payload: { title: 'Hello', level: 'info' } },
    },
    answers: {
      201: { description: 'Critical event, stored.', schema: publishResponse },
      202: { description: 'Published (fanned out).', schema: publishResponse },
    },
    errors: [
      ...AUTH_ERRORS,
      'invalid_json',
      'invalid_event',
      'invalid_request',
      'forbidden',
      'forbidden_topic',
      'forbidden_type',
      'idempotency_key_in_flight',
      'payload_too_large',
      'idempotency_key_reused',
      'rate_limited',
      'store_unavailable',
      'bus_unavailable',
    ],
    options: {
      bodyLimit: MAX_PUBLISH_BODY_BYTES,
      // Authenticated in a hook, not by `authenticate`: the limits and keys below need the publisher.
      preValidation: async (request) => {
        request.publisher = await authenticator.authenticatePublisher(request);
      },
      // After authentication: limits are per token and topic, keys per publisher.
      preHandler: [...limits, idempotency.preHandler],
      onSend: idempotency.onSend,
    },
    handler: async ({ request, reply, body }): Promise<PublishResponse> => {
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
  });
  return [route];
}
