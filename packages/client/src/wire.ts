/**
 * @module The wire names the client uses: the protocol's (zod-free, so importing them costs only
 * the names) plus the two paths only a client calls.
 */
import { CONTROL_EVENT_TYPES, type ControlEventType } from '@infinitescribe/protocol';

export {
  CONTROL_EVENT_TYPES,
  EVENT_TYPES as PUBLISHED_EVENT_TYPES,
  LAST_EVENT_ID_HEADER,
  POLL_PATH,
  STREAM_PATH,
} from '@infinitescribe/protocol';

export const TICKET_PATH = '/api/sse/ticket';

/** `POST` here with a fresh Bearer extends a live stream (docs/http-api.md, "Token lifetime"). */
export function refreshPath(connectionId: string): string {
  return `/api/sse/connections/${encodeURIComponent(connectionId)}/refresh`;
}

/** Whether `name` is a control event (never carries an id). */
export function isControlEventType(name: string): name is ControlEventType {
  return (CONTROL_EVENT_TYPES as readonly string[]).includes(name);
}
