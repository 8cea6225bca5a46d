/**
 * @module Folds `task.progress`, `task.completed`, `task.failed` and `task.cancelled` into one snapshot per task.
 * Framework-free; React reads it through `useTaskProgress`. The percent shown never goes back,
 * whatever order progress and reloads arrive in (the API: percent never decreases).
 */
import type { EnvelopeWithId, TaskView } from '@infinitescribe/protocol';
import { KeyedStore } from './keyed-store.js';
import type { SSEClient } from './sse-client.js';

/**
 * Where a task stands, as far as this client knows: `pending` until its first event or reload,
 * then the server's `queued` / `running` / `completed` / `failed` / `cancelled`.
 */
export type TaskStatus = 'pending' | 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

/**
 * One task's state. Immutable: a change gives a new object.
 * @example const { stage, stageIndex, stageCount, percent, message } = store.get(taskId);
 */
export interface TaskSnapshot {
  readonly taskId: string;
  readonly status: TaskStatus;
  /** Name of the current stage (e.g. `Draft`), once known. */
  readonly stage?: string;
  /** 0-based index of the current stage. */
  readonly stageIndex?: number;
  readonly stageCount?: number;
  /** 0–100, never decreasing; 100 once completed. */
  readonly percent: number;
  /** The latest progress message. */
  readonly message?: string;
  /** `task.completed` result. */
  readonly result?: unknown;
  /** `task.failed` error. */
  readonly error?: string;
  /** Events may have been lost (stream reset): the hook reloads `GET /api/tasks/:id`. */
  readonly needsRefetch: boolean;
  readonly isTerminal: boolean;
}

/** The `task.*` event types. */
export type TaskEventType = 'task.progress' | 'task.completed' | 'task.failed' | 'task.cancelled';

/**
 * The per-task fold.
 * @example
 * const tasks = new TaskStore();
 * const detach = tasks.attach(client);
 * tasks.subscribe(taskId, () => draw(tasks.get(taskId).percent));
 */
export class TaskStore {
  private readonly store = new KeyedStore<TaskSnapshot>({
    initial: (taskId) => ({ taskId, status: 'pending', percent: 0, needsRefetch: false, isTerminal: false }),
  });

  /** The snapshot of `taskId` (a stable `pending` one when nothing is known yet). */
  get(taskId: string): TaskSnapshot {
    return this.store.get(taskId);
  }

  /** Calls `listener` after every change of `taskId`; returns the unsubscribe. */
  subscribe(taskId: string, listener: () => void): () => void {
    return this.store.subscribe(taskId, listener);
  }

  /** Folds one `task.*` event. */
  apply(event: EnvelopeWithId<TaskEventType>): void {
    this.store.update(event.payload.taskId, (current) => fold(current, event));
  }

  /** Folds a reloaded server view in (percent still never decreases). */
  applyView(view: TaskView): void {
    this.store.update(view.taskId, (current) => {
      if (current.isTerminal) return current.needsRefetch ? { ...current, needsRefetch: false } : current;
      const isTerminal = view.status === 'completed' || view.status === 'failed' || view.status === 'cancelled';
      return {
        ...current,
        ...definedOnly({
          stage: view.stage,
          stageIndex: view.stageIndex,
          stageCount: view.stageCount,
          message: view.message,
          result: view.result,
          error: view.error,
        }),
        status: view.status,
        percent: view.status === 'completed' ? 100 : Math.max(current.percent, clampPercent(view.percent)),
        needsRefetch: false,
        isTerminal,
      };
    });
  }

  /** Marks every unfinished, already known task `needsRefetch` (after a reset or lossy resume). */
  markStale(): void {
    for (const taskId of this.store.keys()) {
      this.store.update(taskId, (current) =>
        current.isTerminal || current.status === 'pending' || current.needsRefetch
          ? current
          : { ...current, needsRefetch: true },
      );
    }
  }

  /** Reloads `taskId` with `load` (one request at a time per task) and folds the answer in. */
  reload(taskId: string, load: () => Promise<TaskView>): Promise<void> {
    return this.store.reload(taskId, async () => this.applyView(await load()));
  }

  /** Feeds the store from `client`'s `task.*`, `reset` and `resumed` events; returns the detach. */
  attach(client: SSEClient): () => void {
    const apply = (event: EnvelopeWithId<TaskEventType>) => this.apply(event);
    const stops = [
      client.on('task.progress', apply),
      client.on('task.completed', apply),
      client.on('task.failed', apply),
      client.on('task.cancelled', apply),
      client.on('reset', () => this.markStale()),
      client.on('resumed', ({ complete }) => complete || this.markStale()),
    ];
    return () => {
      for (const stop of stops) stop();
    };
  }
}

function fold(current: TaskSnapshot, event: EnvelopeWithId<TaskEventType>): TaskSnapshot {
  if (current.isTerminal) return current;
  switch (event.type) {
    case 'task.progress': {
      const { stage, stageIndex, stageCount, percent, message } = event.payload;
      // A progress event from an earlier stage than the one shown is stale: keep the newer stage.
      const isStale = current.stageIndex !== undefined && stageIndex < current.stageIndex;
      const { message: _previous, ...rest } = current;
      return {
        ...(isStale ? current : { ...rest, stage, stageIndex, stageCount, ...definedOnly({ message }) }),
        status: 'running',
        percent: Math.max(current.percent, clampPercent(percent)),
        needsRefetch: false,
      };
    }
    case 'task.completed':
      return {
        ...current,
        ...definedOnly({ result: event.payload.result }),
        status: 'completed',
        percent: 100,
        needsRefetch: false,
        isTerminal: true,
      };
    case 'task.failed':
      return {
        ...current,
        ...definedOnly({ stage: event.payload.stage }),
        status: 'failed',
        error: event.payload.error,
        needsRefetch: false,
        isTerminal: true,
      };
    case 'task.cancelled':
      return { ...current, status: 'cancelled', needsRefetch: false, isTerminal: true };
  }
}

function clampPercent(percent: number): number {
  return Number.isFinite(percent) ? Math.min(100, Math.max(0, percent)) : 0;
}

/** The entries of `patch` that are not `undefined` (strict optional properties stay absent). */
function definedOnly<TPatch extends object>(patch: TPatch): Partial<TPatch> {
  return Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined)) as Partial<TPatch>;
}
