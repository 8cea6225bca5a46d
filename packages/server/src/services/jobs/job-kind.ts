/**
 * The job-kind port: what differs between kinds of server-side jobs (generations, tasks). The
 * runner (job-runner.ts) owns the lifecycle they share — admission, journal, cancel here and on
 * other instances, time limit, failure, hand-over at a clean stop and continuation at the next
 * start — and asks the kind only for its work, its events and its view.
 */
import type { JobIdParts } from '../../core/job-id.js';

/** Why a job was stopped before it finished on its own. */
export type StopReason =
  /** Its user cancelled it here. */
  | 'user'
  /** Another instance took the cancel request and published `cancelled` already. */
  | 'remote'
  | 'shutdown'
  | 'timeout'
  /** Its journal entry or announcement could not be published: the create request fails. */
  | 'unannounced';

/** An outcome a job can end with. */
export type JobOutcome = 'completed' | 'failed' | 'cancelled';

/** Where a job of this instance stands: one value, so no flag can contradict another. */
export type JobState =
  | { state: 'queued' }
  | { state: 'running' }
  /** Interrupted; its outcome follows (the work may still be unwinding, or never return). */
  | { state: 'stopping'; reason: StopReason }
  /** Its outcome is being published: nothing else may be. */
  | { state: 'finishing'; outcome: JobOutcome | 'handed_over' }
  | { state: 'completed'; result: unknown }
  | { state: 'failed'; error: string }
  | { state: 'cancelled' }
  /** Left with a checkpoint for the next start to continue. */
  | { state: 'handed_over' };

/** A job of this instance, as the runner holds it; `work` is the kind's own state. */
export interface Job<TSpec, TWork> {
  readonly id: string;
  readonly userId: string;
  /** `user:<id>`: where its events go. */
  readonly topic: string;
  readonly createdAt: number;
  readonly spec: TSpec;
  readonly work: TWork;
  /** Metrics label of its kind (e.g. the task kind's name). */
  readonly label: string;
  readonly signal: AbortSignal;
  state: JobState;
  finishedAt?: number;
}

/** A journalled job of any instance with no outcome in the store. */
export interface UnfinishedJob<TSpec, TCheckpoint> {
  jobId: string;
  userId: string;
  /** What it needs to run again here; absent when it cannot (no request, a kind no longer offered). */
  spec?: TSpec;
  checkpoint?: TCheckpoint;
  /** Metrics label. */
  label: string;
  /** What the log says of it, passed to {@link JobKind.failedAfterRestart}. */
  known: Record<string, unknown>;
}

/** A job as the event log tells it: its view, and whether it has an outcome. */
export interface LoggedJob<TView> {
  view: TView;
  finished: boolean;
  label: string;
  known: Record<string, unknown>;
}

/** What the runner needs to publish an event for a kind. */
export type Publish = (topic: string, type: string, payload: unknown, critical: boolean) => Promise<unknown>;

/** A kind of job: ids, journal, events, work and view. */
export interface JobKind<TSpec, TWork, TCheckpoint, TView extends { status: string; error?: string }> {
  /** What a job is called in messages, e.g. "generation". */
  readonly noun: string;
  /** Payload field of its id in its events, e.g. `generationId`. */
  readonly idField: string;
  readonly journalTopic: string;
  /** Event types of its outcomes. */
  readonly outcomeTypes: Readonly<Record<JobOutcome, string>>;
  /** `failed.error` of a job cut by a clean stop of its instance. */
  readonly shutdownError: string;
  /** `failed.error` of a job found orphaned: its instance stopped without finishing it. */
  readonly restartError: string;
  /** `failed.error` when the work threw something whose message is not meant for users. */
  readonly internalError: string;
  /**
   * A new job runs as soon as it is admitted, before its journal entry is confirmed (its first
   * output must not wait for the store; its outputs wait for {@link announce}); else it runs once
   * journalled.
   */
  readonly eagerStart: boolean;
  newId(instanceTag: string, nowMs: number): string;
  parseId(id: string): JobIdParts | undefined;
  /** Metrics label of a spec. */
  labelOf(spec: TSpec): string;
  /** Counts an outcome (completed, failed, cancelled, handed_over, continued, interrupted). */
  count(label: string, outcome: string): void;
  /** The `request` of its `journal.started` entry. */
  journalRequest(spec: TSpec): Record<string, unknown>;
  /** Its kind-specific state, fresh or from a checkpoint. */
  createWork(
    fields: { id: string; userId: string; topic: string; createdAt: number; spec: TSpec },
    checkpoint?: TCheckpoint,
  ): TWork;
  /** Publishes what tells clients it started (besides the journal), if anything. */
  announce?(job: Job<TSpec, TWork>): Promise<unknown>;
  /**
   * Does the work and resolves with what `completed` carries. It should stop when `job.signal`
   * aborts, but the runner does not wait for it: a job whose work ignores the signal still ends.
   */
  run(job: Job<TSpec, TWork>): Promise<unknown>;
  /** Publishes what was produced but not yet sent (before `completed`, `failed` or `cancelled`). */
  drain(job: Job<TSpec, TWork>): Promise<void>;
  /** Nothing more of its output may go out. */
  stopOutput(job: Job<TSpec, TWork>): Promise<void>;
  /** Payload of `completed`, `failed` (with `error`) or `cancelled`, besides the id. */
  outcomePayload(job: Job<TSpec, TWork>, outcome: JobOutcome, details: { result?: unknown; error?: string }): object;
  /**
   * Publishes what clients need to follow a job continued elsewhere (e.g. its text so far, stored)
   * and returns the `state` of its journal checkpoint.
   */
  checkpoint(job: Job<TSpec, TWork>): Promise<Record<string, unknown>>;
  view(job: Job<TSpec, TWork>): TView;
  find(userId: string, id: string): Promise<LoggedJob<TView> | undefined>;
  unfinished(sinceMs: number): Promise<UnfinishedJob<TSpec, TCheckpoint>[]>;
  /** Payload (besides id and error) of the `failed` that ends an orphan; `known` is what the log said. */
  failedAfterRestart(userId: string, id: string, known: Record<string, unknown>): Promise<object>;
}
