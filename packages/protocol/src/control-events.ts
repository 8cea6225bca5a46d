/**
 * Control events: sent by the server itself, never carry an `id:` line (so they never move a
 * client's resume point), and their `data:` is a bare JSON object, not an envelope.
 */
export interface ControlEvents {
  /**
   * `lastEventId` (extension): the id this stream starts after. A client with no resume point yet
   * keeps it, so even its first outage, before any event arrived, resumes without loss.
   */
  'connection.established': { connectionId: string; instanceId: string; topics: string[]; lastEventId?: string };
  heartbeat: { ts: string };
  'stream.reset': { reason: StreamResetReason; since?: string };
  'stream.resumed': { replayed: number; complete: boolean };
  'auth.expiring': { connectionId: string; expiresAt: string };
  'auth.expired': { connectionId: string };
}

/** Why a resume could not be served from where the client stood. */
export type StreamResetReason = 'unknown_id' | 'gap';

/** One of the control event names. */
export type ControlEventType = keyof ControlEvents;

/** The control event names, for clients that register listeners by name. */
export const CONTROL_EVENT_TYPES: readonly ControlEventType[] = [
  'connection.established',
  'heartbeat',
  'stream.reset',
  'stream.resumed',
  'auth.expiring',
  'auth.expired',
];
