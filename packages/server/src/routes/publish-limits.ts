import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { Principal } from '../core/principal.js';
import type { RealtimeSettings } from '../core/settings.js';
import { AppError } from '../core/errors.js';

/**
 * The scope that makes a publishing token a service token: a back-end service that publishes for
 * many users, limited by PUBLISH_RATE_MAX_SERVICE instead of the per-user PUBLISH_RATE_MAX.
 */
export const SERVICE_SCOPE = 'events:service';

/** Whether `principal` is a back-end service (see {@link SERVICE_SCOPE}). */
export function isService(principal: Principal | undefined): boolean {
  return principal?.scopes.includes(SERVICE_SCOPE) ?? false;
}

/**
 * The limits of `POST /api/events`, as preHandlers to run after authentication (so a forged token
 * spends nobody's quota) and in this order: per token (PUBLISH_RATE_MAX for user tokens,
 * PUBLISH_RATE_MAX_SERVICE for service tokens), then per topic (PUBLISH_TOPIC_RATE_MAX, whoever
 * publishes: one runaway publisher cannot flood one user's stream). Counters are per instance.
 */
export async function createPublishLimits(
  app: FastifyInstance,
  config: RealtimeSettings,
): Promise<preHandlerAsyncHookHandler[]> {
  const window = config.publishRateWindowMs;
  await app.register(rateLimit, {
    global: false,
    hook: 'preHandler',
    errorResponseBuilder: (_request, context) =>
      rateLimited(`publish rate limit of ${context.max} per ${context.after}`, context.ttl),
  });
  const perToken = app.rateLimit({
    max: (request) => (isService(request.publisher) ? config.publishRateMaxService : config.publishRateMax),
    timeWindow: window,
    keyGenerator: (request) => `publish:${request.publisher?.userId ?? request.ip}`,
  });
  const perTopic = app.createRateLimit({
    max: config.publishTopicRateMax,
    timeWindow: window,
    keyGenerator: (request) => `topic:${topicOf(request) ?? ''}`,
  });
  const limitTopic: preHandlerAsyncHookHandler = async (request) => {
    const topic = topicOf(request);
    // No topic: the body is invalid, and validation answers it.
    if (topic === undefined) return;
    const result = await perTopic(request);
    if (!result.isAllowed && result.isExceeded) {
      throw rateLimited(`publish rate limit of ${result.max} per ${window} ms on topic "${topic}"`, result.ttl);
    }
  };
  return [perToken, limitTopic];
}

function topicOf(request: FastifyRequest): string | undefined {
  const body = request.body as { topic?: unknown } | null | undefined;
  return typeof body?.topic === 'string' ? body.topic : undefined;
}

function rateLimited(limit: string, ttlMs: number): AppError {
  return new AppError('rate_limited', `${limit} exceeded`, {
    headers: { 'retry-after': String(Math.max(1, Math.ceil(ttlMs / 1000))) },
  });
}
