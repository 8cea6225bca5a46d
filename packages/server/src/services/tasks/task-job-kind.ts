import type { TaskView } from '@infinitescribe/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type { AIProvider } from '../../adapters/ai/ai-provider.js';
import type { Metrics } from '../../adapters/observability/metrics.js';
import { TASK_JOURNAL_TOPIC } from '../../core/journal-events.js';
import { newTaskId, parseTaskId } from '../../core/job-id.js';
import type { Job, JobKind, Publish, UnfinishedJob } from '../jobs/job-kind.js';
import type { TaskCatalog } from './task-catalog.js';
import type { PreparedTask } from './task-kind.js';
import { isTerminal, journalEntry, type TaskCheckpoint, type TaskLog } from './task-log.js';
import { TaskProgress } from './task-progress.js';

/** `failed.error` of a task cut by a clean shutdown of its instance. */
export const SHUTDOWN_ERROR = 'server shut down';
/** `failed.error` of a task found orphaned: its instance stopped without finishing it. */
export const RESTART_ERROR = 'server restarted';
/** `failed.error` when a kind threw something whose message is not meant for users. */
export const INTERNAL_ERROR = 'the task failed unexpectedly';

/** A task's own state beside the runner's. */
export interface TaskWork {
  progress: TaskProgress;
  /** What its finished stages produced, by stage index (TaskRunContext.finishedStages). */
  finishedStages: unknown[];
}

export type TaskJob = Job<PreparedTask, TaskWork>;

/** What the task kind needs. */
export interface TaskJobKindOptions {
  catalog: TaskCatalog;
  provider: AIProvider;
  log: TaskLog;
  publish: Publish;
  metrics: Metrics;
  logger: FastifyBaseLogger;
  progressIntervalMs: number;
  now: () => number;
}

/**
 * Tasks as a job kind: the catalogue's kinds run stage by stage, publishing throttled, monotonic
 * `task.progress` (the first of each stage critical, so stage starts are stored); `failed` names
 * the stage; a hand-over stores the latest progress and the finished stages' outputs, and the
 * continuation goes on after the last finished stage.
 */
export function taskJobKind(options: TaskJobKindOptions): JobKind<PreparedTask, TaskWork, TaskCheckpoint, TaskView> {
  const { catalog, provider, log, publish, metrics, logger, progressIntervalMs, now } = options;
  return {
    noun: 'task',
    idField: 'taskId',
    journalTopic: TASK_JOURNAL_TOPIC,
    outcomeTypes: { completed: 'task.completed', failed: 'task.failed', cancelled: 'task.cancelled' },
    shutdownError: SHUTDOWN_ERROR,
    restartError: RESTART_ERROR,
    internalError: INTERNAL_ERROR,
    eagerStart: false,
    newId: newTaskId,
    parseId: parseTaskId,
    labelOf: (prepared) => prepared.kind,
    count: (kind, outcome) => metrics.tasks.inc({ kind, outcome }),
    journalRequest: (prepared) => journalEntry('', '', prepared).request,

    createWork({ id, topic, spec }, checkpoint) {
      const progress = new TaskProgress({
        stages: spec.stages,
        intervalMs: progressIntervalMs,
        now,
        // Stage starts are critical: stored, so any instance, and recovery, knows the stage.
        publish: async (update, boundary) => {
          await publish(topic, 'task.progress', { taskId: id, ...update }, boundary);
        },
        onError: (error) => logger.warn({ err: error, taskId: id }, 'task progress not published'),
        ...(checkpoint?.progress ? { resumeFrom: checkpoint.progress } : {}),
      });
      return { progress, finishedStages: [...(checkpoint?.finishedStages ?? [])] };
    },

    async run(job) {
      const { progress, finishedStages } = job.work;
      progress.report(0, 0);
      const result = await job.spec.run({
        taskId: job.id,
        signal: job.signal,
        provider,
        progress: (stageIndex, fraction, message) => progress.report(stageIndex, fraction, message),
        finishedStages: [...finishedStages],
        stageFinished: (stageIndex, output) => {
          // Until its outcome or checkpoint is being published: a stage that ends while it stops still counts.
          const { state } = job.state;
          if (state === 'running' || state === 'stopping') finishedStages[stageIndex] = output;
        },
      });
      if (job.state.state !== 'running') return result;
      progress.report(job.spec.stages.length - 1, 1);
      await progress.flush();
      return result;
    },

    // Progress is throttled, not held back: what is pending at the end is dropped.
    drain: async () => undefined,
    stopOutput: (job) => job.work.progress.stop(),

    outcomePayload(job, outcome, details) {
      if (outcome === 'completed') return details.result === undefined ? {} : { result: details.result };
      if (outcome === 'cancelled') return {};
      return { error: details.error ?? 'failed', stage: job.work.progress.current.stage };
    },

    async checkpoint(job) {
      const { progress, finishedStages } = job.work;
      const current = progress.current;
      // A task that never started has published no progress: it starts afresh, announcing its first stage then.
      if (progress.started) await publish(job.topic, 'task.progress', { taskId: job.id, ...current }, true);
      const state: TaskCheckpoint = { finishedStages, ...(progress.started ? { progress: current } : {}) };
      return { ...state };
    },

    view(job) {
      const { stage, stageIndex, stageCount, percent, message } = job.work.progress.current;
      const { state } = job.state;
      const status =
        state === 'completed' || state === 'failed' || state === 'cancelled'
          ? state
          : state === 'queued' || (state === 'stopping' && !job.work.progress.started)
            ? 'queued'
            : 'running';
      const view: TaskView = {
        taskId: job.id,
        kind: job.spec.kind,
        status,
        stage,
        stageIndex,
        stageCount,
        percent: status === 'completed' ? 100 : percent,
      };
      if (message !== undefined) view.message = message;
      if (job.state.state === 'completed' && job.state.result !== undefined) view.result = job.state.result;
      if (job.state.state === 'failed') view.error = job.state.error;
      return view;
    },

    async find(userId, id) {
      const view = await log.find(userId, id);
      if (!view) return undefined;
      return { view, finished: isTerminal(view.status), label: view.kind, known: { stage: view.stage } };
    },

    async unfinished(sinceMs) {
      const unfinished = await log.unfinished(sinceMs);
      return unfinished.map(({ taskId, userId, kind, stage, input, checkpoint }) => {
        const orphan: UnfinishedJob<PreparedTask, TaskCheckpoint> = {
          jobId: taskId,
          userId,
          label: kind,
          known: stage === undefined ? {} : { stage },
        };
        if (checkpoint) orphan.checkpoint = checkpoint;
        if (input !== undefined && checkpoint) {
          try {
            orphan.spec = catalog.prepare(kind, input);
          } catch (error) {
            logger.warn({ err: error, taskId }, 'a handed-over task cannot run in this version; it fails');
          }
        }
        return orphan;
      });
    },

    failedAfterRestart: async (_userId, _id, known) => (typeof known.stage === 'string' ? { stage: known.stage } : {}),
  };
}
