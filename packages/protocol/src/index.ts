export { ERROR_CODES } from './error-codes.js';
export type { ErrorBody, ErrorCode } from './error-codes.js';
export { EVENT_SCHEMAS, EVENT_TYPES, isEventType, validateEventPayload } from './events.js';
export type { EventPayload, EventType, PayloadValidation } from './events.js';
export { SERVER_EMITTED_TYPE_PREFIXES, isServerEmittedType } from './server-emitted.js';
export type { Envelope, EnvelopeWithId } from './envelope.js';
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
export { ACCESS_TOKEN_COOKIE, LAST_EVENT_ID_HEADER, POLL_PATH, STREAM_PATH } from './http.js';
export type { DevTokenResponse, PollResponse, PublishRequest, PublishResponse, TicketResponse } from './http.js';
