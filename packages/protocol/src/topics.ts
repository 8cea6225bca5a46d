/**
 * Topic grammar. A topic is `<kind>:<id>` (`user:u1`, `doc:42`) or a bare name (`broadcast`).
 * The character set keeps topics safe inside URLs, Redis keys and SQL without escaping.
 */
export const TOPIC_PATTERN = /^[A-Za-z0-9_-]+(?::[A-Za-z0-9_.@-]+)?$/;

/** Longest topic accepted anywhere. */
export const TOPIC_MAX_LENGTH = 128;

/** Whether `topic` follows the topic grammar. */
export function isValidTopic(topic: string): boolean {
  return topic.length > 0 && topic.length <= TOPIC_MAX_LENGTH && TOPIC_PATTERN.test(topic);
}

/** The private topic every user may always subscribe to. @example userTopic('u1') === 'user:u1' */
export function userTopic(userId: string): string {
  return `user:${userId}`;
}
