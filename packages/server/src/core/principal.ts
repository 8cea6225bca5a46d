import { isValidTopic, userTopic } from '@infinitescribe/protocol';
import { matchesPublishPatterns } from './publish-topics.js';

/** Who a verified token or ticket speaks for, and what it grants. */
export interface Principal {
  userId: string;
  /** Extra topics from the `topics` claim (always-allowed `user:<sub>` not included). */
  topics: readonly string[];
  scopes: readonly string[];
  /**
   * Patterns of the `publish_topics` claim (publish-topics.ts): where the token may publish.
   * Absent: anywhere but the server-internal topics, as before the claim existed.
   */
  publishTopics?: readonly string[];
  /** Token expiry, ms since epoch. */
  expiresAt: number;
}

/** The scope that allows POST /api/events. */
export const PUBLISH_SCOPE = 'events:publish';

/** Whether `principal` may publish to `topic`, as far as its `publish_topics` claim goes. */
export function canPublish(principal: Principal, topic: string): boolean {
  return (
    principal.publishTopics === undefined || matchesPublishPatterns(principal.publishTopics, topic, principal.userId)
  );
}

/** Whether `principal` may receive `topic`. */
export function canSubscribe(principal: Principal, topic: string): boolean {
  return topic === userTopic(principal.userId) || principal.topics.includes(topic);
}

/** The topics a stream gets when it names none: the user's own plus every granted one. */
export function defaultTopics(principal: Principal): string[] {
  return [...new Set([userTopic(principal.userId), ...principal.topics.filter(isValidTopic)])];
}
