/**
 * @module The protocol names the client needs at run time. They live in packages/protocol, but its
 * value exports pull in the zod catalogue (about 90 KB gzipped), which would dwarf this client. So
 * the client imports protocol *types* only, and every constant below is typed against them: when
 * the protocol adds an event type or renames a path, this file stops compiling instead of drifting.
 */
import type {
  ControlEventType,
  EventType,
  LAST_EVENT_ID_HEADER as ProtocolLastEventIdHeader,
  POLL_PATH as ProtocolPollPath,
  STREAM_PATH as ProtocolStreamPath,
} from '@infinitescribe/protocol';

export const STREAM_PATH: typeof ProtocolStreamPath = '/api/sse/stream';
export const POLL_PATH: typeof ProtocolPollPath = '/api/sse/poll';
export const LAST_EVENT_ID_HEADER: typeof ProtocolLastEventIdHeader = 'last-event-id';
export const TICKET_PATH = '/api/sse/ticket';

/** `POST` here with a fresh Bearer extends a live stream (docs/http-api.md, "Token lifetime"). */
export function refreshPath(connectionId: string): string {
  return `/api/sse/connections/${encodeURIComponent(connectionId)}/refresh`;
}

// A Record over the union forces one key per member: a new type in the protocol is a compile error.
const CONTROL_TYPES: Record<ControlEventType, true> = {
  'connection.established': true,
  heartbeat: true,
  'stream.reset': true,
  'stream.resumed': true,
  'auth.expiring': true,
  'auth.expired': true,
};

const PUBLISHED_TYPES: Record<EventType, true> = {
  notification: true,
  'ai.generation.started': true,
  'ai.generation.delta': true,
  'ai.generation.snapshot': true,
  'ai.generation.completed': true,
  'ai.generation.failed': true,
  'ai.generation.cancelled': true,
  'task.progress': true,
  'task.completed': true,
  'task.failed': true,
  'task.cancelled': true,
};

/** Control event names (never carry an id). */
export const CONTROL_EVENT_TYPES = Object.keys(CONTROL_TYPES) as ControlEventType[];

/** The catalogue's event names; a native EventSource needs one listener per name. */
export const PUBLISHED_EVENT_TYPES = Object.keys(PUBLISHED_TYPES) as EventType[];

/** Whether `name` is a control event. */
export function isControlEventType(name: string): name is ControlEventType {
  return Object.hasOwn(CONTROL_TYPES, name);
}

/** Whether `name` is a type of the catalogue this build knows. */
export function isPublishedEventType(name: string): name is EventType {
  return Object.hasOwn(PUBLISHED_TYPES, name);
}
