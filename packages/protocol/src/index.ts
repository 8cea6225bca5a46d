/**
 * @module @infinitescribe/protocol: the wire contract (types, event names, topic grammar, error
 * codes, paths). No zod at run time; the schemas are in `@infinitescribe/protocol/schemas`.
 */
export { ERROR_CODES } from './error-codes.js';
export type { ErrorBody, ErrorCode } from './error-codes.js';
export { EVENT_TYPES, isEventType } from './events.js';
export type {
  BuiltInEvents,
  EventMap,
  EventPayload,
  EventType,
  GenerationUsage,
  NotificationPayload,
  WithBuiltIns,
} from './events.js';
export { SERVER_EMITTED_TYPE_PREFIXES, isServerEmittedType } from './server-emitted.js';
export type { Envelope, EnvelopeWithId, PublishedEvent } from './envelope.js';
export { CONTROL_EVENT_TYPES } from './control-events.js';
export type { ControlEvents, ControlEventType, StreamResetReason } from './control-events.js';
export { EVENT_ID_PATTERN, isWellFormedEventId } from './event-id.js';
export {
  TOPIC_MAX_LENGTH,
  TOPIC_PATTERN,
  USER_ID_MAX_LENGTH,
  isServableUserId,
  isValidTopic,
  userTopic,
} from './topics.js';
export {
  ACCESS_TOKEN_COOKIE,
  CONVERSATION_ID_PATTERN,
  LAST_EVENT_ID_HEADER,
  MAX_CONVERSATIONS_PAGE,
  MAX_GENERATION_INPUT_CHARS,
  MAX_GENERATION_MESSAGES,
  MAX_GENERATION_TOKENS,
  MAX_MODEL_NAME_CHARS,
  POLL_PATH,
  STREAM_PATH,
} from './http.js';
export type {
  ConversationSummary,
  ConversationTurn,
  ConversationView,
  ConversationsPage,
  DevTokenResponse,
  GenerationCreated,
  GenerationMessage,
  GenerationRequest,
  GenerationStatus,
  GenerationView,
  PollResponse,
  ProviderInfo,
  PublishRequest,
  PublishResponse,
  RunningGeneration,
  RunningGenerationsResponse,
  TaskCreated,
  TaskKindInfo,
  TaskKindsResponse,
  TaskStatus,
  TaskView,
  TicketResponse,
} from './http.js';
