import { randomBytes } from 'node:crypto';
import type { Principal } from './principal.js';
import type { TicketStore } from './ticket-store.js';

/** In-process tickets: the embedded default (a ticket works on the instance that issued it). */
export class MemoryTicketStore implements TicketStore {
  private readonly tickets = new Map<string, { principal: Principal; expiresAt: number }>();
  private readonly sweep: NodeJS.Timeout;

  constructor(private readonly now: () => number = Date.now) {
    this.sweep = setInterval(() => {
      const nowMs = this.now();
      for (const [ticket, entry] of this.tickets) if (entry.expiresAt <= nowMs) this.tickets.delete(ticket);
    }, 10_000);
    this.sweep.unref();
  }

  async issue(principal: Principal, ttlMs: number): Promise<string> {
    const ticket = randomBytes(24).toString('base64url');
    this.tickets.set(ticket, { principal, expiresAt: this.now() + ttlMs });
    return ticket;
  }

  async consume(ticket: string): Promise<Principal | undefined> {
    const entry = this.tickets.get(ticket);
    this.tickets.delete(ticket);
    if (!entry || entry.expiresAt <= this.now()) return undefined;
    return entry.principal;
  }

  async close(): Promise<void> {
    clearInterval(this.sweep);
    this.tickets.clear();
  }
}
