import { isValidTopic, TOPIC_MAX_LENGTH } from '@infinitescribe/protocol';

/** The claim that bounds where a token may publish. */
export const PUBLISH_TOPICS_CLAIM = 'publish_topics';

/** Longest pattern accepted (a topic, plus room for a `{sub}` placeholder and the `*`). */
const PATTERN_MAX_LENGTH = TOPIC_MAX_LENGTH + 16;
/** Most patterns one token may carry. */
const MAX_PATTERNS = 100;
const SUB_PLACEHOLDER = '{sub}';

/**
 * Whether `pattern` follows the `publish_topics` grammar (docs/security.md):
 * - an exact topic (`doc:42`, `broadcast`);
 * - a prefix ending in one `*`, the only place a `*` is special (`doc:*` is every `doc:` topic,
 *   `*` alone is every topic);
 * - either may hold `{sub}`, replaced by the token's own `sub` (`user:{sub}`, `drafts:{sub}-*`).
 */
export function isValidPublishPattern(pattern: string): boolean {
  if (pattern.length === 0 || pattern.length > PATTERN_MAX_LENGTH) return false;
  const isPrefix = pattern.endsWith('*');
  const literal = (isPrefix ? pattern.slice(0, -1) : pattern).replaceAll(SUB_PLACEHOLDER, 'sub');
  if (literal.includes('*')) return false;
  // A prefix is valid when some topic starts with it.
  return isPrefix ? literal === '' || isValidTopic(`${literal}x`) : isValidTopic(literal);
}

/** Whether `topic` matches one of `patterns` for a token whose subject is `sub`. */
export function matchesPublishPatterns(patterns: readonly string[], topic: string, sub: string): boolean {
  return patterns.some((pattern) => {
    const resolved = pattern.replaceAll(SUB_PLACEHOLDER, sub);
    return resolved.endsWith('*') ? topic.startsWith(resolved.slice(0, -1)) : topic === resolved;
  });
}

/**
 * Reads the claim: `undefined` when absent (no bound: the token may publish to any topic but the
 * server-internal ones), else its patterns.
 * @returns a human-readable problem instead when the claim is malformed, so the token is refused.
 */
export function readPublishTopicsClaim(claim: unknown): { patterns: string[] | undefined } | { problem: string } {
  if (claim === undefined) return { patterns: undefined };
  if (!Array.isArray(claim) || !claim.every((pattern) => typeof pattern === 'string')) {
    return { problem: `token claim \`${PUBLISH_TOPICS_CLAIM}\` must be an array of topic patterns` };
  }
  if (claim.length > MAX_PATTERNS) {
    return { problem: `token claim \`${PUBLISH_TOPICS_CLAIM}\` holds more than ${MAX_PATTERNS} patterns` };
  }
  const bad = claim.find((pattern) => !isValidPublishPattern(pattern));
  if (bad !== undefined) {
    return {
      problem:
        `token claim \`${PUBLISH_TOPICS_CLAIM}\` has an invalid pattern ${JSON.stringify(bad)}: ` +
        'use a topic, or a prefix ending in one `*`; `{sub}` stands for the token’s subject',
    };
  }
  return { patterns: claim };
}
