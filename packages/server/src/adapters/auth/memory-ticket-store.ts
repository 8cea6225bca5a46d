import { randomBytes } from 'node:crypto';
import { AppError } from '../../core/errors.js';
import type { Principal } from '../../core/principal.js';
import type { TicketStore } from './ticket-store.js';

/** In-process tickets: the embedded default (a ticket works on the instance that issued it). */
export class MemoryTicketStore implements TicketStore {
  private readonly tickets = new Map<string, { principal: Principal; expiresAt: number }>();
  private readonly sweep: NodeJS.Timeout;

  /** `maxOutstanding`: tickets held at once; past it (after dropping expired ones) issuing is a 429. */
  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxOutstanding = 100_000,
  ) {
    this.sweep = setInterval(() => this.dropExpired(), 10_000);
    this.sweep.unref();
  }

  async issue(principal: Principal, ttlMs: number): Promise<string> {
    if (this.tickets.size >= this.maxOutstanding) this.dropExpired();
    if (this.tickets.size >= this.maxOutstanding) {
      throw new AppError('rate_limited', 'too many stream tickets are outstanding; retry shortly', {
        headers: { 'retry-after': String(Math.max(1, Math.ceil(ttlMs / 1000))) },
      });
    }
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

  private dropExpired(): void {
    const nowMs = this.now();
    for (const [ticket, entry] of this.tickets) if (entry.expiresAt <= nowMs) this.tickets.delete(ticket);
  }

  async close(): Promise<void> {
    clearInterval(this.sweep);
    this.tickets.clear();
  }
}
