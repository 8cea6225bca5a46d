import { userTopic, type EventPayload } from '@infinitescribe/protocol';
import type { EventBus } from '../bus/event-bus.js';
import type { EventRecord } from '../events/event-record.js';
import { idFloorAt } from '../events/event-id.js';
import { CLOCK_SKEW_MS, JobJournal } from '../jobs/job-journal.js';
import { TASK_JOURNAL_TOPIC, type JournalPayload } from '../jobs/journal-events.js';
import type { EventStore } from '../store/event-store.js';
import { parseTaskId } from '../jobs/job-id.js';

/** At most this many stored events are read to find one task. */
const MAX_SCANNED_EVENTS = 20_000;
/** Hot-log events read for a task's latest progress. */
const HOT_LOG_READ_LIMIT = 10_000;

/** Every state a task can be in. */
export type TaskStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

const TERMINAL_STATUS: Partial<Record<string, TaskStatus>> = {
  'task.completed': 'completed',
  'task.failed': 'failed',
  'task.cancelled': 'cancelled',
};

/** Whether `status` is an outcome. */
export function isTerminal(status: TaskStatus): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}

/** The journal entry of a new task: its kind and stages (what any instance needs to describe it). */
export function journalEntry(
  taskId: string,
  userId: string,
  details: { kind: string; stages: readonly string[] },
): JournalPayload<'journal.started'> {
  return { jobId: taskId, userId, request: { kind: details.kind, stages: [...details.stages] } };
}

/** A task as the event log tells it (answer of GET /api/tasks/:id). */
export interface TaskView {
  taskId: string;
  kind: string;
  status: TaskStatus;
  /** The current stage (the last one reached). */
  stage: string;
  stageIndex: number;
  stageCount: number;
  percent: number;
  /** Latest progress message. */
  message?: string;
  /** `task.completed` result. */
  result?: unknown;
  /** Why it failed. */
  error?: string;
}

/** A journalled task without an outcome in the store. */
export interface UnfinishedTask {
  taskId: string;
  userId: string;
  kind: string;
  /** Its latest stage the store knows of (stage starts are stored). */
  stage?: string;
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
    let progress = events.findLast((event) => event.type === 'task.progress');
    let terminal = events.find((event) => this.journal.isTerminal(event));
    const first = events[0];
    if (!started && !first) return undefined;
    if (!terminal) {
      // The latest progress (and an outcome not stored yet) from the hot log.
      const after = (first?.id ?? idFloorAt(parts.startedAtMs - CLOCK_SKEW_MS)) - 1;
      for (const event of await this.journal.hotLog(userTopic(userId), after, HOT_LOG_READ_LIMIT)) {
        if (this.journal.jobIdOf(event) !== taskId) continue;
        if (event.type === 'task.progress' && event.id > (progress?.id ?? 0)) progress = event;
        else if (this.journal.isTerminal(event)) terminal ??= event;
      }
    }
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
