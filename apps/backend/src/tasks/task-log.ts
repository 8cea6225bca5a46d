import { userTopic, type EventPayload } from '@infinitescribe/protocol';
import type { EventBus } from '../bus/event-bus.js';
import { CLOCK_SKEW_MS, journalKey, parseJournalKey } from '../ai/generation-log.js';
import { UnavailableError } from '../errors.js';
import { idFloorAt } from '../events/event-id.js';
import type { EventRecord } from '../events/event-record.js';
import type { EventStore } from '../store/event-store.js';
import { parseTaskId } from './task-id.js';

/**
 * Internal topic where every task is journalled when created (critical, so in the store), so a
 * starting instance can find the tasks that were running when the process died and any instance
 * can tell a task's kind. The catalogue has no `task.started`, so an entry is a `task.progress` at
 * 0 % whose `taskId` is `<taskId>~<userId>` (the generation journal's key, see generation-log.ts),
 * whose `stage` is the first stage and whose `message` is the kind. No client should be granted it.
 */
export const TASK_JOURNAL_TOPIC = 'tasks';

const PAGE = 500;
/** At most this many stored events are read to find one task. */
const MAX_SCANNED_EVENTS = 20_000;
/** Hot-log events read for a task's latest progress. */
const HOT_LOG_READ_LIMIT = 10_000;
/** Users per store query in the recovery scan. */
const USERS_PER_QUERY = 100;

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

/** The journal entry of a new task; `undefined` when user id and task id are too long together. */
export function journalEntry(
  taskId: string,
  userId: string,
  details: { kind: string; stages: readonly string[] },
): EventPayload<'task.progress'> | undefined {
  const key = journalKey(taskId, userId);
  if (key === undefined) return undefined;
  const { kind, stages } = details;
  return { taskId: key, stage: stages[0] ?? kind, stageIndex: 0, stageCount: stages.length, percent: 0, message: kind };
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

function taskIdOf(event: EventRecord): string | undefined {
  const payload = event.payload as { taskId?: unknown } | null;
  return typeof payload?.taskId === 'string' ? payload.taskId : undefined;
}

/**
 * Reads tasks back from the event log, so any instance can answer for any task: the journal entry,
 * the stage starts and the outcome from the store (critical), the latest progress from the hot log.
 */
export class TaskLog {
  constructor(private readonly sources: { bus: EventBus; store: EventStore }) {}

  /**
   * The task `taskId` of `userId` (only the owner's topic and journal entry are read, so another
   * user's task is simply not found); `undefined` when unknown or expired from the store.
   * @throws UnavailableError when the store cannot be read.
   */
  async find(userId: string, taskId: string): Promise<TaskView | undefined> {
    const parts = parseTaskId(taskId);
    if (!parts) return undefined;
    const topic = userTopic(userId);
    const key = journalKey(taskId, userId);
    let journal: EventRecord | undefined;
    let progress: EventRecord | undefined;
    let terminal: EventRecord | undefined;
    let after = idFloorAt(parts.startedAtMs - CLOCK_SKEW_MS);
    for (let scanned = 0; scanned < MAX_SCANNED_EVENTS && terminal === undefined; scanned += PAGE) {
      const topics = journal || key === undefined ? [topic] : [TASK_JOURNAL_TOPIC, topic];
      const events = await this.readStore(topics, after);
      for (const event of events) {
        const id = taskIdOf(event);
        if (event.topic === TASK_JOURNAL_TOPIC) {
          if (id === key && event.type === 'task.progress') journal ??= event;
        } else if (id === taskId) {
          if (event.type === 'task.progress') progress = event;
          else if (TERMINAL_STATUS[event.type] !== undefined) {
            terminal = event;
            break;
          }
        }
      }
      if (events.length < PAGE) break;
      after = events.at(-1)?.id ?? after;
    }
    const first = journal ?? progress ?? terminal;
    if (!first) return undefined;
    if (!terminal) {
      // The latest progress (and an outcome not stored yet) from the hot log.
      const { events } = await this.sources.bus.read([topic], first.id - 1, HOT_LOG_READ_LIMIT);
      for (const event of events) {
        if (taskIdOf(event) !== taskId) continue;
        if (event.type === 'task.progress' && event.id > (progress?.id ?? 0)) progress = event;
        else if (TERMINAL_STATUS[event.type] !== undefined) terminal ??= event;
      }
    }
    return viewOf(taskId, { journal, progress, terminal });
  }

  /**
   * Tasks journalled since `sinceMs` that have no outcome in the store: those that were queued or
   * running when their instance stopped (or still are, on another instance).
   */
  async unfinished(sinceMs: number): Promise<UnfinishedTask[]> {
    const candidates = new Map<string, UnfinishedTask & { journalId: number }>();
    let after = idFloorAt(sinceMs);
    for (;;) {
      const events = await this.readStore([TASK_JOURNAL_TOPIC], after);
      for (const event of events) {
        const key = taskIdOf(event);
        const entry = key === undefined ? undefined : parseJournalKey(key);
        if (!entry || event.type !== 'task.progress') continue;
        const kind = (event.payload as ProgressPayload).message ?? 'unknown';
        candidates.set(entry.id, { taskId: entry.id, userId: entry.userId, kind, journalId: event.id });
      }
      if (events.length < PAGE) break;
      after = events.at(-1)?.id ?? after;
    }
    const users = [...new Set([...candidates.values()].map((candidate) => candidate.userId))];
    for (let index = 0; index < users.length; index += USERS_PER_QUERY) {
      const batch = users.slice(index, index + USERS_PER_QUERY);
      const inBatch = [...candidates.values()].filter((candidate) => batch.includes(candidate.userId));
      let cursor = Math.min(...inBatch.map((candidate) => candidate.journalId));
      for (;;) {
        const events = await this.readStore(batch.map(userTopic), cursor);
        for (const event of events) {
          const taskId = taskIdOf(event);
          const candidate = taskId === undefined ? undefined : candidates.get(taskId);
          if (!candidate || taskId === undefined) continue;
          if (TERMINAL_STATUS[event.type] !== undefined) candidates.delete(taskId);
          else if (event.type === 'task.progress') candidate.stage = (event.payload as ProgressPayload).stage;
        }
        if (events.length < PAGE) break;
        cursor = events.at(-1)?.id ?? cursor;
      }
    }
    return [...candidates.values()].map(({ journalId: _journalId, ...task }) => task);
  }

  private async readStore(topics: string[], after: number): Promise<EventRecord[]> {
    try {
      return await this.sources.store.readAfter({ topics, after, limit: PAGE });
    } catch (error) {
      throw new UnavailableError('store_unavailable', 'the event store is unavailable', error);
    }
  }
}

function viewOf(
  taskId: string,
  events: { journal?: EventRecord; progress?: EventRecord; terminal?: EventRecord },
): TaskView {
  const journal = events.journal?.payload as ProgressPayload | undefined;
  const progress = events.progress?.payload as ProgressPayload | undefined;
  const { terminal } = events;
  const latest = progress ?? journal;
  const status = terminal ? (TERMINAL_STATUS[terminal.type] as TaskStatus) : progress ? 'running' : 'queued';
  const stageCount = latest?.stageCount ?? 1;
  const view: TaskView = {
    taskId,
    kind: journal?.message ?? 'unknown',
    status,
    stage: progress?.stage ?? journal?.stage ?? '',
    stageIndex: progress?.stageIndex ?? 0,
    stageCount,
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
