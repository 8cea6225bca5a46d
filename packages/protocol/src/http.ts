import type { EventType } from './events.js';
import type { EnvelopeWithId } from './envelope.js';
import type { StreamResetReason } from './control-events.js';

/** Body of `POST /api/events`. */
export interface PublishRequest {
  topic: string;
  type: EventType;
  payload: unknown;
  critical?: boolean;
}

/** Answer of `POST /api/events` (202, or 201 once a critical event is stored). */
export interface PublishResponse {
  id: string;
}

/** Answer of `GET /api/sse/poll`. */
export interface PollResponse {
  events: EnvelopeWithId[];
  lastEventId: string | null;
  reset?: { reason: StreamResetReason; since?: string };
}

/** Answer of `POST /api/auth/dev-token`. */
export interface DevTokenResponse {
  accessToken: string;
  expiresIn: number;
}

/** Answer of `POST /api/sse/ticket`. */
export interface TicketResponse {
  ticket: string;
  expiresIn: number;
}

/** Header names and query parameters of the stream endpoint. */
export const LAST_EVENT_ID_HEADER = 'last-event-id';
export const ACCESS_TOKEN_COOKIE = 'access_token';
export const STREAM_PATH = '/api/sse/stream';
export const POLL_PATH = '/api/sse/poll';
