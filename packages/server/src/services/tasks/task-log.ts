import type { EventPayload, TaskStatus, TaskView } from '@infinitescribe/protocol';
import { EVENT_SCHEMAS } from '@infinitescribe/protocol/schemas';
import { z } from 'zod';
import type { EventBus } from '../../adapters/bus/event-bus.js';
import type { EventRecord } from '../../core/event-record.js';
import { JobJournal } from '../jobs/job-journal.js';
import { TASK_JOURNAL_TOPIC, type JournalPayload } from '../../core/journal-events.js';
import type { EventStore } from '../../adapters/store/event-store.js';
import { parseTaskId } from '../../core/job-id.js';
import type { ProgressUpdate } from './task-progress.js';

/** At most this many stored events are read to find one task. */
const MAX_SCANNED_EVENTS = 20_000;

export type { TaskStatus, TaskView };

const TERMINAL_STATUS: Partial<Record<string, TaskStatus>> = {
  'task.completed': 'completed',
  'task.failed': 'failed',
  'task.cancelled': 'cancelled',
};

/** Whether `status` is an outcome. */
export function isTerminal(status: TaskStatus): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}

/**
 * The journal entry of a new task: its kind and stages (what any instance needs to describe it)
 * and its input (what the next start needs to continue it after a clean stop).
 */
export function journalEntry(
  taskId: string,
  userId: string,
  details: { kind: string; stages: readonly string[]; input?: unknown },
): JournalPayload<'journal.started'> {
  const input = details.input === undefined ? {} : { input: details.input };
  return { jobId: taskId, userId, request: { kind: details.kind, stages: [...details.stages], ...input } };
}

/** Where a task stood when a clean stop handed it over (`journal.checkpoint`'s state). */
export interface TaskCheckpoint {
  /** What its finished stages produced (see TaskRunContext.finishedStages). */
  finishedStages: unknown[];
  /** Its last progress, if it had started: the continuation goes on from there. */
  progress?: ProgressUpdate;
}

/** The checkpoint's progress is a `task.progress` payload without its task id. */
const checkpointSchema = z.object({
  finishedStages: z.array(z.unknown()),
  progress: EVENT_SCHEMAS['task.progress'].omit({ taskId: true }).optional(),
});

/** The state of a task checkpoint, or undefined when it is not one (another version wrote it). */
export function checkpointState(state: unknown): TaskCheckpoint | undefined {
  const parsed = checkpointSchema.safeParse(state);
  if (!parsed.success) return undefined;
  const { finishedStages, progress } = parsed.data;
  return progress ? { finishedStages, progress } : { finishedStages };
}

/** A journalled task without an outcome in the store. */
export interface UnfinishedTask {
  taskId: string;
  userId: string;
  kind: string;
  /** Its latest stage the store knows of (stage starts are stored). */
  stage?: string;
  /** Its input, as journalled (absent in journals written before inputs were). */
  input?: unknown;
  /** Where it stood, when a clean stop handed it over. */
  checkpoint?: TaskCheckpoint;
}

type ProgressPayload = EventPayload<'task.progress'>;

/**
 * Reads tasks back from the event log, so any instance can answer for any task: the journal entry,
 * the stage starts and the outcome from the store (critical), the latest progress from the hot log.
 */
export class TaskLog {
  private readonly journal: JobJournal;

  constructor(sources: { bus: EventBus; store: EventStore }) {
    this.journal = new JobJournal(sources, {
      topic: TASK_JOURNAL_TOPIC,
      idField: 'taskId',
      terminalTypes: new Set(Object.keys(TERMINAL_STATUS)),
    });
  }

  /**
   * The task `taskId` of `userId` (another user's task is simply not found); `undefined` when
   * unknown or expired from the store.
   * @throws UnavailableError when the store cannot be read.
   */
  async find(userId: string, taskId: string): Promise<TaskView | undefined> {
    const parts = parseTaskId(taskId);
    if (!parts) return undefined;
    const { started, events } = await this.journal.history(userId, taskId, parts.startedAtMs, MAX_SCANNED_EVENTS);
    if (!started && events.length === 0) return undefined;
    const progress = events.findLast((event) => event.type === 'task.progress');
    const terminal = events.find((event) => this.journal.isTerminal(event));
    return viewOf(taskId, { request: started?.entry.request, progress, terminal });
  }

  /**
   * Tasks journalled since `sinceMs` that have no outcome in the store: those that were queued or
   * running when their instance stopped (or still are, on another instance).
   */
  async unfinished(sinceMs: number): Promise<UnfinishedTask[]> {
    const jobs = await this.journal.unfinished(sinceMs);
    return jobs.map((job) => {
      const task: UnfinishedTask = { taskId: job.jobId, userId: job.userId, kind: kindOf(job.request) };
      // Stage starts are stored: the latest stored progress names the stage it was in.
      if (job.latest?.type === 'task.progress') task.stage = (job.latest.payload as ProgressPayload).stage;
      if (Object.hasOwn(job.request, 'input')) task.input = job.request.input;
      const checkpoint = job.checkpoint === undefined ? undefined : checkpointState(job.checkpoint);
      if (checkpoint) task.checkpoint = checkpoint;
      return task;
    });
  }
}

function kindOf(request: Record<string, unknown> | undefined): string {
  return typeof request?.kind === 'string' ? request.kind : 'unknown';
}

function stagesOf(request: Record<string, unknown> | undefined): string[] {
  const stages = request?.stages;
  return Array.isArray(stages) ? stages.filter((stage): stage is string => typeof stage === 'string') : [];
}

function viewOf(
  taskId: string,
  events: { request?: Record<string, unknown>; progress?: EventRecord; terminal?: EventRecord },
): TaskView {
  const progress = events.progress?.payload as ProgressPayload | undefined;
  const { terminal, request } = events;
  const stages = stagesOf(request);
  const status = terminal ? (TERMINAL_STATUS[terminal.type] as TaskStatus) : progress ? 'running' : 'queued';
  const view: TaskView = {
    taskId,
    kind: kindOf(request),
    status,
    stage: progress?.stage ?? stages[0] ?? '',
    stageIndex: progress?.stageIndex ?? 0,
    stageCount: progress?.stageCount ?? Math.max(1, stages.length),
    percent: status === 'completed' ? 100 : (progress?.percent ?? 0),
  };
  if (progress?.message !== undefined) view.message = progress.message;
  if (terminal?.type === 'task.completed') {
    const { result } = terminal.payload as EventPayload<'task.completed'>;
    if (result !== undefined) view.result = result;
  }
  if (terminal?.type === 'task.failed') {
    const failed = terminal.payload as EventPayload<'task.failed'>;
    view.error = failed.error;
    if (failed.stage !== undefined) view.stage = failed.stage;
  }
  return view;
}
