/**
 * Event ids are opaque to clients: at most 64 characters of `[0-9A-Za-z._-]` (anything else would
 * force CORS preflights on `Last-Event-ID`). Clients compare them only for equality.
 */
export const EVENT_ID_PATTERN = /^[0-9A-Za-z._-]{1,64}$/;

/** Whether `id` has the shape of an event id (it may still be unknown to the server). */
export function isWellFormedEventId(id: string): boolean {
  return EVENT_ID_PATTERN.test(id);
}
