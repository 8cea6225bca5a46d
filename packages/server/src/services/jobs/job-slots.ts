import type { ConnectionLease, ConnectionLeases } from '../../adapters/leases/connection-leases.js';
import { AppError } from '../../core/errors.js';

/** How often a user's queue asks again for a slot that another instance holds. */
const QUEUE_RETRY_MS = 250;

/**
 * The lease of a waiting job: counted in a set of its own per user, so that running and waiting
 * jobs have separate limits on the one lease keyspace. A `,` never occurs in a user id
 * (isServableUserId), so no real user's set is named so.
 */
function queuePlace(userId: string, jobId: string): ConnectionLease {
  return { userId: `${userId},queued`, connectionId: jobId };
}

/** Options of {@link JobSlots}. */
export interface JobSlotsOptions {
  /** What a job is called in errors, e.g. "generation". */
  noun: string;
  maxRunningPerUser: number;
  /** Jobs past the running limit wait, up to this many per user; 0: refused at once. */
  maxQueuedPerUser: number;
  /**
   * Counts running and waiting jobs per user across the cluster (leases in Redis), so
   * `maxRunningPerUser` and `maxQueuedPerUser` hold for the cluster and not per instance. Without
   * it, per instance.
   */
  leases?: ConnectionLeases;
  /** How often the leases of running and waiting jobs are renewed (a third of their TTL). */
  leaseRefreshMs?: number;
  /** Told when a queued job got its slot: it may run now. */
  onGranted: (userId: string, jobId: string) => void;
}

interface UserSlots {
  /** Ids of the jobs holding a running slot (and, with leases, a cluster-wide lease). */
  running: Set<string>;
  waiting: string[];
  /** A pump is under way (it awaits leases): another one only asks it to go round again. */
  pumping: boolean;
  pumpAgain: boolean;
}

/**
 * Admission of jobs per user, for every kind alike: at most `maxRunningPerUser` run at once — on
 * this instance (a local count) and, with leases, across the cluster (one lease per running job,
 * taken after the local count so two instances admitting one user cannot both take the last slot).
 * Past the limit a job waits in a FIFO queue on its instance, or is refused (`rate_limited`) when
 * the user has `maxQueuedPerUser` waiting already: with leases, waiting anywhere in the cluster
 * (each waiting job holds a lease of its own kind, given back when it runs or ends). A queue
 * blocked by another instance's jobs asks again every {@link QUEUE_RETRY_MS}.
 */
export class JobSlots {
  private readonly users = new Map<string, UserSlots>();
  private refreshTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly blocked = new Set<string>();
  private closed = false;

  constructor(private readonly options: JobSlotsOptions) {}

  /** Starts renewing the leases of running and waiting jobs (they outlive a killed instance only by their TTL). */
  start(): void {
    const { leases, leaseRefreshMs } = this.options;
    if (!leases || leaseRefreshMs === undefined || this.refreshTimer) return;
    this.refreshTimer = setInterval(() => void leases.refresh(this.heldLeases()), leaseRefreshMs);
    this.refreshTimer.unref();
  }

  /**
   * A slot for new job `jobId` of `userId`: `run` (it holds a running slot) or `queued` (it waits;
   * {@link JobSlotsOptions.onGranted} tells when it may run). `continued` (a job handed over by a
   * restart) was admitted before: it is never refused, and without a queue it runs whatever its
   * user started since.
   * @throws AppError `rate_limited` when the user has as many running and waiting as allowed.
   */
  async admit(userId: string, jobId: string, continued = false): Promise<'run' | 'queued'> {
    const { maxRunningPerUser, maxQueuedPerUser, leases } = this.options;
    const slots = this.slotsOf(userId);
    const queueRoom = continued || slots.waiting.length < maxQueuedPerUser;
    const forced = continued && maxQueuedPerUser === 0;
    if (!forced && (slots.running.size >= maxRunningPerUser || slots.waiting.length > 0)) {
      if (!queueRoom) throw this.tooMany();
      await this.enqueue(userId, jobId, continued);
      return 'queued';
    }
    slots.running.add(jobId);
    const lease = await leases?.acquire(
      { userId, connectionId: jobId },
      forced ? Number.MAX_SAFE_INTEGER : maxRunningPerUser,
    );
    if (!lease || lease.granted) return 'run';
    slots.running.delete(jobId);
    if (!queueRoom) {
      this.forgetUser(userId);
      throw this.tooMany();
    }
    await this.enqueue(userId, jobId, continued);
    this.block(userId);
    return 'queued';
  }

  /** Gives the slot or queue place of `jobId` back and lets the user's next waiting job run. */
  async release(userId: string, jobId: string): Promise<void> {
    const slots = this.users.get(userId);
    if (!slots) return;
    const at = slots.waiting.indexOf(jobId);
    if (at >= 0) {
      slots.waiting.splice(at, 1);
      await this.options.leases?.release(queuePlace(userId, jobId));
    }
    if (slots.running.delete(jobId)) {
      // The cluster-wide slot first: a create right after the local one frees must find it free too.
      await this.options.leases?.release({ userId, connectionId: jobId });
    }
    await this.pump(userId);
  }

  /** Nothing is granted any more (the runner is stopping); timers end. */
  close(): void {
    this.closed = true;
    clearInterval(this.refreshTimer);
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** Lets waiting jobs of `userId` run while slots are free here and in the cluster. */
  private async pump(userId: string): Promise<void> {
    const slots = this.users.get(userId);
    if (!slots) return;
    if (slots.pumping) {
      slots.pumpAgain = true;
      return;
    }
    slots.pumping = true;
    try {
      do {
        slots.pumpAgain = false;
        if (!(await this.grant(userId, slots))) return;
      } while (slots.pumpAgain);
    } finally {
      slots.pumping = false;
    }
    this.blocked.delete(userId);
    this.forgetUser(userId);
  }

  /** Grants free slots to waiting jobs in order; false when the cluster holds the rest (retried later). */
  private async grant(userId: string, slots: UserSlots): Promise<boolean> {
    const { maxRunningPerUser, leases } = this.options;
    while (!this.closed && slots.waiting.length > 0 && slots.running.size < maxRunningPerUser) {
      const next = slots.waiting[0] as string;
      slots.running.add(next);
      const lease = await leases?.acquire({ userId, connectionId: next }, maxRunningPerUser);
      if (lease && !lease.granted) {
        slots.running.delete(next);
        this.block(userId);
        return false;
      }
      // It may have been cancelled while its lease was being taken.
      if (slots.waiting[0] !== next) {
        slots.running.delete(next);
        await leases?.release({ userId, connectionId: next });
        continue;
      }
      slots.waiting.shift();
      // Not awaited: the job starts now; a release never rejects (a lost one expires with its TTL).
      void leases?.release(queuePlace(userId, next));
      this.options.onGranted(userId, next);
    }
    return true;
  }

  /**
   * Puts `jobId` in its user's queue, once the cluster counts its place (a job handed over by a
   * restart always gets one).
   * @throws AppError `rate_limited` when the user has `maxQueuedPerUser` waiting in the cluster.
   */
  private async enqueue(userId: string, jobId: string, continued: boolean): Promise<void> {
    const { leases, maxQueuedPerUser } = this.options;
    const limit = continued ? Number.MAX_SAFE_INTEGER : maxQueuedPerUser;
    const place = await leases?.acquire(queuePlace(userId, jobId), limit);
    if (place && !place.granted) {
      this.forgetUser(userId);
      throw this.tooMany();
    }
    // The user's jobs may all have ended while the place was being taken (their entry forgotten,
    // nobody left to pump): queue on the current entry, and pump if a slot is free by now — after
    // the caller has registered the job, which it does once this resolves.
    const current = this.slotsOf(userId);
    current.waiting.push(jobId);
    if (current.running.size < this.options.maxRunningPerUser) setImmediate(() => void this.pump(userId));
  }

  /** Another instance holds the user's slots: ask again shortly (a release there is not heard here). */
  private block(userId: string): void {
    this.blocked.add(userId);
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      const users = [...this.blocked];
      this.blocked.clear();
      for (const user of users) void this.pump(user);
    }, QUEUE_RETRY_MS);
    this.retryTimer.unref();
  }

  private slotsOf(userId: string): UserSlots {
    let slots = this.users.get(userId);
    if (!slots) {
      slots = { running: new Set(), waiting: [], pumping: false, pumpAgain: false };
      this.users.set(userId, slots);
    }
    return slots;
  }

  private forgetUser(userId: string): void {
    const slots = this.users.get(userId);
    if (slots && slots.running.size === 0 && slots.waiting.length === 0) this.users.delete(userId);
  }

  private tooMany(): AppError {
    const { noun, maxRunningPerUser, maxQueuedPerUser } = this.options;
    const waiting = maxQueuedPerUser > 0 ? ` and ${maxQueuedPerUser} wait` : '';
    return new AppError(
      'rate_limited',
      `at most ${maxRunningPerUser} ${noun}s may run${waiting} at once per user; wait for one to end or cancel it`,
      { headers: { 'retry-after': '1' } },
    );
  }

  private heldLeases(): ConnectionLease[] {
    const leases: ConnectionLease[] = [];
    for (const [userId, slots] of this.users) {
      for (const jobId of slots.running) leases.push({ userId, connectionId: jobId });
      for (const jobId of slots.waiting) leases.push(queuePlace(userId, jobId));
    }
    return leases;
  }
}
