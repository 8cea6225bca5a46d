/**
 * @module `useTaskProgress`: stage, percent (never decreasing) and outcome of one long-running
 * task, folded from `task.progress`, `task.completed` and `task.failed`.
 */
import { useCallback, useMemo, useSyncExternalStore } from 'react';
import type { TaskSnapshot, TaskStatus } from '@infinitescribe/client';
import { useSSEContext } from './sse-provider.js';
import { useReload } from './use-reload.js';

/**
 * What {@link useTaskProgress} returns.
 * @example const { stage, stageIndex, stageCount, percent, message, isRunning } = useTaskProgress(taskId);
 */
export interface TaskProgress {
  taskId: string | null;
  /** `idle` when no id is given; `pending` until the first event or reload. */
  status: TaskStatus | 'idle';
  stage: string | undefined;
  /** 0-based. */
  stageIndex: number | undefined;
  stageCount: number | undefined;
  /** 0–100, never decreasing. */
  percent: number;
  message: string | undefined;
  result: unknown;
  error: string | undefined;
  /** True while the task may still progress (`pending`, `queued` or `running`). */
  isRunning: boolean;
  needsRefetch: boolean;
}

/** Options of {@link useTaskProgress}. */
export interface UseTaskProgressOptions {
  /** Reload a task still `pending` after this many ms. Default `3000`; `null` never does. */
  reloadPendingAfterMs?: number | null;
}

const IDLE: TaskProgress = {
  taskId: null,
  status: 'idle',
  stage: undefined,
  stageIndex: undefined,
  stageCount: undefined,
  percent: 0,
  message: undefined,
  result: undefined,
  error: undefined,
  isRunning: false,
  needsRefetch: false,
};

/**
 * The progress of task `taskId` (from `POST /api/tasks`). Reloads `GET /api/tasks/:id` after a
 * stream reset, or when no event arrives for a while.
 * @param taskId The id to follow; `null`/`undefined` gives an `idle` state.
 * @example
 * const { stage, percent, message } = useTaskProgress(taskId);
 * return <progress value={percent} max={100} aria-valuetext={`${stage}: ${message}`} />;
 */
export function useTaskProgress(taskId: string | null | undefined, options: UseTaskProgressOptions = {}): TaskProgress {
  const { tasks, loaders } = useSSEContext();
  const id = taskId ?? null;
  const subscribe = useCallback(
    (listener: () => void) => (id === null ? () => undefined : tasks.subscribe(id, listener)),
    [tasks, id],
  );
  const getSnapshot = useCallback((): TaskSnapshot | null => (id === null ? null : tasks.get(id)), [tasks, id]);
  const snapshot = useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
  const load = loaders.loadTask;
  useReload({
    id,
    needsRefetch: snapshot?.needsRefetch ?? false,
    isPending: snapshot?.status === 'pending',
    reloadPendingAfterMs: options.reloadPendingAfterMs === undefined ? 3_000 : options.reloadPendingAfterMs,
    reload: load && id !== null ? (signal) => tasks.reload(id, () => load(id, signal)) : undefined,
  });
  return useMemo(() => {
    if (!snapshot) return IDLE;
    return {
      taskId: snapshot.taskId,
      status: snapshot.status,
      stage: snapshot.stage,
      stageIndex: snapshot.stageIndex,
      stageCount: snapshot.stageCount,
      percent: snapshot.percent,
      message: snapshot.message,
      result: snapshot.result,
      error: snapshot.error,
      isRunning: snapshot.status === 'pending' || snapshot.status === 'queued' || snapshot.status === 'running',
      needsRefetch: snapshot.needsRefetch,
    };
  }, [snapshot]);
}
