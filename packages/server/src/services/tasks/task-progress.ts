import type { EventPayload } from '@infinitescribe/protocol';

/** One `task.progress` payload, without the task id; percent is 0..100 with one decimal, never decreasing. */
export type ProgressUpdate = Omit<EventPayload<'task.progress'>, 'taskId'>;

/** Options of {@link TaskProgress}. */
export interface TaskProgressOptions {
  /** The task's stage names (at least one). */
  stages: readonly string[];
  /** At most one publish per this many ms, except stage boundaries and 100 % (TASK_PROGRESS_INTERVAL_MS). */
  intervalMs: number;
  /**
   * Publishes one update; `boundary` marks the first update of a stage. Called one at a time, in
   * order; a rejection goes to `onError` and does not stop later updates.
   */
  publish: (update: ProgressUpdate, boundary: boolean) => Promise<void>;
  onError: (error: unknown) => void;
  /**
   * Where the task stood before a restart (its last update, already published): percent and stage
   * go on from there and never below it.
   */
  resumeFrom?: ProgressUpdate;
  now?: () => number;
}

/**
 * Turns a task's progress reports into `task.progress` updates: overall percent =
 * (stageIndex + fraction) / stageCount × 100, clamped so it never decreases; stageIndex is kept
 * below stageCount and never goes back. Publishing is throttled to one update per interval (the
 * latest value wins; a trailing update goes out when the interval ends), except that the first
 * update of each stage and the one reaching 100 % go at once.
 */
export class TaskProgress {
  private latest: ProgressUpdate;
  /** Highest stage whose first update was sent. */
  private startedStage = -1;
  private pending: { update: ProgressUpdate; boundary: boolean } | undefined;
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly options: TaskProgressOptions) {
    if (options.stages.length === 0) throw new Error('a task needs at least one stage');
    this.now = options.now ?? Date.now;
    this.latest = { stage: options.stages[0] as string, stageIndex: 0, stageCount: options.stages.length, percent: 0 };
    const resumed = options.resumeFrom;
    if (resumed && resumed.stageCount === options.stages.length && resumed.stageIndex < options.stages.length) {
      this.latest = { ...resumed };
      this.startedStage = resumed.stageIndex;
    }
  }

  /** The latest accepted update (published or not yet). */
  get current(): ProgressUpdate {
    return this.latest;
  }

  /** Whether an update went out (or had, before a restart this resumes from). */
  get started(): boolean {
    return this.startedStage >= 0;
  }

  /** Whether {@link stop} was called: reports are ignored. */
  get isStopped(): boolean {
    return this.stopped;
  }

  /**
   * Takes one report (see TaskRunContext.progress); reports of an earlier stage are ignored, and a
   * report without a message keeps the one given earlier in the same stage.
   */
  report(stageIndex: number, fraction: number, message?: string): void {
    if (this.stopped || !Number.isFinite(stageIndex)) return;
    const { stages } = this.options;
    const index = Math.min(Math.max(Math.trunc(stageIndex), 0), stages.length - 1);
    if (index < this.latest.stageIndex) return;
    const share = Number.isFinite(fraction) ? Math.min(Math.max(fraction, 0), 1) : 0;
    // One decimal, rounded down (100 only when the last stage is done); the epsilon absorbs float error.
    const computed = Math.floor(((index + share) / stages.length) * 1000 + 1e-6) / 10;
    // A report without a message keeps the stage's last one.
    const text = message ?? (index === this.latest.stageIndex ? this.latest.message : undefined);
    const update: ProgressUpdate = {
      stage: stages[index] as string,
      stageIndex: index,
      stageCount: stages.length,
      percent: Math.max(this.latest.percent, computed),
      ...(text !== undefined ? { message: text } : {}),
    };
    const boundary = index > this.startedStage;
    if (!boundary && sameUpdate(update, this.latest)) return;
    this.latest = update;
    if (boundary) this.startedStage = index;
    this.pending = { update, boundary };
    const now = this.now();
    if (boundary || update.percent >= 100 || now - this.lastSentAt >= this.options.intervalMs) {
      this.send();
    } else {
      this.timer ??= setTimeout(
        () => {
          this.timer = undefined;
          this.send();
        },
        this.lastSentAt + this.options.intervalMs - now,
      );
    }
  }

  /** Sends what is pending now and resolves once every update handed over so far is published. */
  async flush(): Promise<void> {
    this.send();
    await this.chain;
  }

  /** Drops what is pending, ignores later reports, and resolves once the update in flight is out. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clearTimer();
    this.pending = undefined;
    await this.chain;
  }

  private send(): void {
    this.clearTimer();
    const pending = this.pending;
    if (!pending || this.stopped) return;
    this.pending = undefined;
    this.lastSentAt = this.now();
    this.chain = this.chain
      .then(() => this.options.publish(pending.update, pending.boundary))
      .catch((error: unknown) => this.options.onError(error));
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

function sameUpdate(a: ProgressUpdate, b: ProgressUpdate): boolean {
  return a.stageIndex === b.stageIndex && a.percent === b.percent && a.message === b.message;
}
