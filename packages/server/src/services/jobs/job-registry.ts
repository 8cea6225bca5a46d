import { AppError } from '../../core/errors.js';
import { FixedWindowLimit } from '../../core/fixed-window-limit.js';
import { instanceTagOf, type JobIdParts } from '../../core/job-id.js';

/**
 * Whether a clean stop should hand jobs over for the next start to continue: only where that start
 * will find them as its own — always in embedded mode (one process on the log), and in a cluster
 * only under a fixed INSTANCE_ID (a restarted instance with a new id would leave them to time out).
 */
export function continuesAfterRestart(busKind: 'memory' | 'redis', configuredInstanceId: string | undefined): boolean {
  return busKind === 'memory' || configuredInstanceId !== undefined;
}

/** How far back a starting instance looks for jobs left running. */
export const DEFAULT_RECOVERY_LOOKBACK_MS = 24 * 3_600_000;
/** How long a cancel waits for a local job to publish its outcome; shutdown, for all. */
export const SETTLE_WAIT_MS = 5_000;
/** Finished jobs stay in memory this long (fast GET with their result), at most {@link MAX_FINISHED}. */
const FINISHED_TTL_MS = 10 * 60_000;
const MAX_FINISHED = 10_000;
/** Pruning walks every job: at most once per this many ms, unless the registry is at its bound. */
const PRUNE_INTERVAL_MS = 1_000;
/** A job with no outcome this long after its time limit is dead wherever it ran. */
const ORPHAN_GRACE_MS = 60_000;

/** What the registry needs of a job. */
export interface RegisteredJob {
  id: string;
  userId: string;
  /** Set once it has an outcome here: from then on it may be forgotten. */
  finishedAt?: number;
}

/** Options of {@link JobRegistry}. */
export interface JobRegistryOptions {
  instanceId: string;
  /** No other instance can be running jobs on this log (the in-process bus: embedded mode). */
  singleInstance: boolean;
  /** A job running longer fails. */
  maxDurationMs: number;
  /** Reads the start time and instance tag out of an id. */
  parseId: (id: string) => JobIdParts | undefined;
  /** What a job is called in errors, e.g. "generation". */
  noun: string;
  /** Jobs one user may start per window (on this instance); unset: no bound. */
  createRate?: { max: number; windowMs: number };
  now: () => number;
}

/**
 * This instance's jobs (generations, tasks) and what it may do about the others: the in-memory
 * registry serves its own jobs fast and holds their abort handles (finished ones are forgotten
 * after a while: the log still has them); {@link isOrphan} tells whether a job that is not here and
 * has no outcome can still be running anywhere; {@link repairOnce} keeps concurrent repairs of one
 * orphan (a GET racing the start-up scan) from publishing two outcomes.
 */
export class JobRegistry<TJob extends RegisteredJob> {
  readonly instanceTag: string;
  private readonly jobs = new Map<string, TJob>();
  private readonly repairing = new Set<string>();
  private nextPruneAt = Number.NEGATIVE_INFINITY;
  private readonly creations: FixedWindowLimit | undefined;

  constructor(private readonly options: JobRegistryOptions) {
    this.instanceTag = instanceTagOf(options.instanceId);
    const { createRate } = options;
    this.creations = createRate && new FixedWindowLimit({ ...createRate, now: options.now });
  }

  /**
   * Counts a new job of `userId` against its creation rate: every job is journalled (its request
   * stored), so a create-and-cancel loop would fill the store however few run at once.
   * @throws AppError `rate_limited` with `Retry-After` past the rate.
   */
  admitCreation(userId: string): void {
    const decision = this.creations?.take(userId);
    if (decision === undefined || decision.ok) return;
    const { max, windowMs } = this.options.createRate as { max: number; windowMs: number };
    throw new AppError(
      'rate_limited',
      `at most ${max} ${this.options.noun}s may be started per ${windowMs} ms per user`,
      {
        headers: FixedWindowLimit.retryAfterHeader(decision),
      },
    );
  }

  has(id: string): boolean {
    return this.jobs.has(id);
  }

  get(id: string): TJob | undefined {
    return this.jobs.get(id);
  }

  /** Registers a job (and forgets finished ones past their time). */
  add(job: TJob): void {
    this.prune();
    this.jobs.set(job.id, job);
  }

  delete(id: string): void {
    this.jobs.delete(id);
  }

  all(): TJob[] {
    return [...this.jobs.values()];
  }

  /**
   * The local job `id` if `userId` owns it; `undefined` when it is not here (ask the log).
   * @throws AppError `not_found` when it is another user's: the same answer as for no job at all.
   */
  owned(userId: string, id: string): TJob | undefined {
    const job = this.jobs.get(id);
    if (job && job.userId !== userId) throw this.notFound(id);
    return job;
  }

  notFound(id: string): AppError {
    return new AppError('not_found', `no ${this.options.noun} ${id}`);
  }

  /** Whether a job not running here, without outcome, can no longer be running anywhere. */
  isOrphan(id: string): boolean {
    const parts = this.options.parseId(id);
    if (!parts) return false;
    if (this.options.singleInstance || parts.instanceTag === this.instanceTag) return true;
    return this.options.now() - parts.startedAtMs > this.options.maxDurationMs + ORPHAN_GRACE_MS;
  }

  /** Runs `repair` for orphan `id` unless a repair of it is already under way here. */
  async repairOnce(id: string, repair: () => Promise<void>): Promise<void> {
    if (this.repairing.has(id)) return;
    this.repairing.add(id);
    try {
      await repair();
    } finally {
      this.repairing.delete(id);
    }
  }

  private prune(): void {
    const now = this.options.now();
    if (now < this.nextPruneAt && this.jobs.size < MAX_FINISHED) return;
    this.nextPruneAt = now + PRUNE_INTERVAL_MS;
    const cutoff = now - FINISHED_TTL_MS;
    let excess = this.jobs.size - MAX_FINISHED;
    for (const [id, job] of this.jobs) {
      if (job.finishedAt === undefined) continue;
      if (job.finishedAt < cutoff || excess > 0) {
        this.jobs.delete(id);
        excess--;
      }
    }
  }
}

/** Waits for `promise` to settle, or `ms`, whichever comes first (never rejects, holds no timer after). */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    promise.then(
      () => undefined,
      () => undefined,
    ),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}
