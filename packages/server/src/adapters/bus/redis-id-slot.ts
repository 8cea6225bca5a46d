import { performance } from 'node:perf_hooks';
import type { BusLogger } from './event-bus.js';

/**
 * This instance's slot of the id space: the residue (1…ID_SLOTS-1, see event-id.ts) of the ids it
 * may issue on its own while Redis is unreachable, so that two instances cut off at the same time
 * never issue the same id, nor one still on Redis (whose counter issues residue 0).
 *
 * The slot is a lease in Redis (SLOT_SCRIPT), taken at start and renewed while connected, every
 * third of its TTL and at every reconnect. An instance that never got one (all taken, Redis down
 * at start) refuses local publishes. So does one whose lease may have run out: locally the lease
 * counts as valid until the renewal was *sent* + TTL − a margin (a monotonic clock), which is before
 * Redis (whose lease started when it *ran* the renewal) can hand the slot to anyone else, as long
 * as clocks do not drift apart by more than the margin. A lease is released at a clean close.
 *
 * The residual risk: Redis restarted empty forgets every lease; an instance starting right then may
 * take a slot a running instance still holds, until that one renews (at once, on its reconnect)
 * and moves to a free slot. Only a second outage inside that window would make them share one.
 */

/** Lease TTL: an outage longer than about this (less the margin) stops local publishes. */
export const DEFAULT_SLOT_TTL_MS = 15 * 60_000;

/** Options of {@link RedisIdSlot}. */
export interface RedisIdSlotOptions {
  /** Runs SLOT_SCRIPT: leases `preferred` (0: any) for `ttlMs` (0: releases it); resolves with the slot, 0 for none. */
  lease(preferred: number, ttlMs: number): Promise<number>;
  ttlMs?: number;
  logger?: BusLogger;
  /** Monotonic ms; default performance.now. */
  now?: () => number;
}

export class RedisIdSlot {
  private slot = 0;
  /** Local (monotonic) time until which {@link slot} is surely still ours. */
  private validUntil = 0;
  private renewing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(private readonly options: RedisIdSlotOptions) {
    this.ttlMs = options.ttlMs ?? DEFAULT_SLOT_TTL_MS;
    this.now = options.now ?? (() => performance.now());
  }

  /** The slot local ids may use now, or `undefined` (none, or its lease may have run out). */
  current(): number | undefined {
    return this.slot > 0 && this.now() < this.validUntil ? this.slot : undefined;
  }

  /** Takes a slot and keeps renewing it every third of the TTL. */
  async start(): Promise<void> {
    await this.renew();
    this.timer = setInterval(() => void this.renew(), this.ttlMs / 3);
    this.timer.unref();
  }

  /** Takes or renews the lease (single-flight). Never throws: a failed renewal keeps the current lease. */
  renew(): Promise<void> {
    this.renewing ??= this.leaseNow().finally(() => {
      this.renewing = undefined;
    });
    return this.renewing;
  }

  /** Stops renewing and, with `release`, gives the slot back (best effort). */
  async stop(release: boolean): Promise<void> {
    clearInterval(this.timer);
    await this.renewing;
    const slot = this.slot;
    this.slot = 0;
    if (release && slot > 0) await this.options.lease(slot, 0).catch(() => undefined);
  }

  private async leaseNow(): Promise<void> {
    const sentAt = this.now();
    let slot: number;
    try {
      slot = await this.options.lease(this.slot, this.ttlMs);
    } catch (error) {
      this.options.logger?.warn({ err: error }, 'id slot not renewed; retrying at the next reconnect or renewal');
      return;
    }
    if (slot === 0 && (this.slot !== 0 || this.validUntil === 0)) {
      this.options.logger?.warn(
        {},
        'no id slot free: this instance refuses local publishes while Redis is unreachable',
      );
    } else if (this.slot !== 0 && slot !== this.slot) {
      this.options.logger?.warn({ slot, previous: this.slot }, 'id slot taken by another instance; moved to another');
    }
    this.slot = slot;
    const margin = Math.min(60_000, this.ttlMs / 10);
    this.validUntil = slot > 0 ? sentAt + this.ttlMs - margin : 0;
  }
}
