import { isValidTopic } from '@infinitescribe/protocol';
import { canSubscribe, defaultTopics, type Principal } from '../../core/principal.js';
import { AppError, ForbiddenTopicError } from '../../core/errors.js';
import { JOURNAL_TOPICS } from '../../core/journal-events.js';

const MAX_TOPICS_PER_STREAM = 100;

/** Server-internal topics (journals), never streamed to clients whatever a token grants. */
const RESERVED_TOPICS: ReadonlySet<string> = JOURNAL_TOPICS;

/** Whether `topic` is server-internal: not streamed, and not publishable through the API. */
export function isReservedTopic(topic: string): boolean {
  return RESERVED_TOPICS.has(topic);
}

/**
 * The topics a stream or poll gets: the `topics` query (comma-separated) when given, else the
 * user's own topic plus every granted one. A topic the token does not grant is a 403.
 */
export function resolveTopics(principal: Principal, requested: unknown): string[] {
  if (requested === undefined || requested === '') return grantedTopics(principal);
  if (typeof requested !== 'string') throw new AppError('invalid_request', 'topics must be a comma-separated string');
  const topics = splitTopics(requested);
  if (topics.length > MAX_TOPICS_PER_STREAM) {
    throw new AppError('invalid_request', `at most ${MAX_TOPICS_PER_STREAM} topics per stream`);
  }
  for (const topic of topics) {
    if (!isValidTopic(topic)) {
      throw new ForbiddenTopicError(
        topic,
        `"${topic}" is not a valid topic; percent-encode each topic in the query (a raw "+" reads as a space)`,
      );
    }
    if (RESERVED_TOPICS.has(topic) || !canSubscribe(principal, topic)) throw new ForbiddenTopicError(topic);
  }
  return topics.length > 0 ? topics : grantedTopics(principal);
}

function grantedTopics(principal: Principal): string[] {
  return defaultTopics(principal).filter((topic) => !RESERVED_TOPICS.has(topic));
}

/** The distinct, trimmed, non-empty names of a comma-separated list, in order. */
function splitTopics(requested: string): string[] {
  // One topic, the usual stream: none of the intermediate arrays (every stream open pays for them).
  if (!requested.includes(',')) {
    const topic = requested.trim();
    return topic.length > 0 ? [topic] : [];
  }
  return [
    ...new Set(
      requested
        .split(',')
        .map((topic) => topic.trim())
        .filter((topic) => topic.length > 0),
    ),
  ];
}
