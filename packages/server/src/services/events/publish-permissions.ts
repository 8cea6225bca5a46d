import { isServerEmittedType } from '@infinitescribe/protocol';
import { canPublish, type Principal } from '../../core/principal.js';
import { AppError, ForbiddenTopicError } from '../../core/errors.js';
import { isJournalEventType } from '../../core/journal-events.js';
import { isReservedTopic } from '../sse/topic-access.js';

/**
 * What a publisher from outside the server (`POST /api/events`) may publish, checked before the
 * event path: never a type the server emits for the jobs it runs (`ai.generation.*`, `task.*`)
 * nor one of its internal journal types, whatever the scope (a forged `cancelled` would stop
 * someone's job, a forged `completed` would be read back as its result); never on a
 * server-internal topic; and only where the token's `publish_topics` claim allows.
 * @throws AppError `forbidden_type`, `forbidden` (internal topic), ForbiddenTopicError.
 */
export function assertMayPublish(principal: Principal, event: { topic: string; type: string }): void {
  const { topic, type } = event;
  if (isServerEmittedType(type) || isJournalEventType(type)) {
    throw new AppError('forbidden_type', `events of type "${type}" are published by the server only`);
  }
  if (isReservedTopic(topic)) throw new AppError('forbidden', `topic "${topic}" is server-internal`);
  if (!canPublish(principal, topic)) {
    throw new ForbiddenTopicError(topic, `the token's publish_topics claim does not cover topic "${topic}"`);
  }
}
