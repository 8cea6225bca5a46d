/**
 * Topic grammar. A topic is `<kind>:<id>` (`user:u1`, `doc:42`) or a bare name (`broadcast`).
 * The kind is ASCII letters, digits, `_` and `-`. The id may hold any printable character except
 * `,` (topics are comma-separated in `?topics=`), so the subjects identity providers issue
 * (`auth0|5f7c…`, `google-oauth2|123`, `jane+news@example.com`, non-ASCII e-mail addresses) make a
 * `user:` topic as they are. Refused, because they would not survive a URL, a log line or a
 * Redis key unchanged, or would look like another topic: whitespace and line separators, control
 * and invisible format characters, lone surrogates, private-use characters. In a URL each topic
 * is percent-encoded (`encodeURIComponent`, or URLSearchParams, which also turns `+` into `%2B`:
 * a raw `+` in a query string reads as a space, and a topic with a space is refused).
 */
export const TOPIC_PATTERN = /^[A-Za-z0-9_-]+(?::[^\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Z},]+)?$/u;

/** Longest topic accepted anywhere: `user:` plus the longest user id, with room to spare. */
export const TOPIC_MAX_LENGTH = 300;

/** Longest user id (JWT `sub`) the server serves. */
export const USER_ID_MAX_LENGTH = 256;

/** Whether `topic` follows the topic grammar. */
export function isValidTopic(topic: string): boolean {
  return topic.length > 0 && topic.length <= TOPIC_MAX_LENGTH && TOPIC_PATTERN.test(topic);
}

/** The private topic every user may always subscribe to. @example userTopic('u1') === 'user:u1' */
export function userTopic(userId: string): string {
  return `user:${userId}`;
}

/**
 * Whether `userId` (a token's `sub`) can be served: 1 to {@link USER_ID_MAX_LENGTH} characters
 * that make a valid `user:` topic. A token whose subject cannot is refused (401) instead of
 * getting a stream on a topic nothing can publish to.
 * @example isServableUserId('auth0|5f7c8ec7c33c6c004bbafe82') === true; isServableUserId('a,b') === false
 */
export function isServableUserId(userId: string): boolean {
  return userId.length > 0 && userId.length <= USER_ID_MAX_LENGTH && isValidTopic(userTopic(userId));
}
