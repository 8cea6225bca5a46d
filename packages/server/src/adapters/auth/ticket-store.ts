import type { Principal } from '../../core/principal.js';

/**
 * One-time stream tickets: the browser's EventSource cannot send headers, so it trades a Bearer
 * token for a short-lived ticket that goes in the URL and works exactly once.
 */
export interface TicketStore {
  /** Issues a ticket granting what `principal` grants, valid for `ttlMs`. */
  issue(principal: Principal, ttlMs: number): Promise<string>;
  /** Redeems a ticket; `undefined` when unknown, expired or already used. */
  consume(ticket: string): Promise<Principal | undefined>;
  close(): Promise<void>;
}
