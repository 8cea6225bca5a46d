/**
 * The task-kind port: what a long-running, multi-stage operation is. A kind has a name, a zod
 * schema for its input, named stages and a `run` that reports progress within each stage; the
 * runner (task-runner.ts) turns that into `task.*` events. Adapters: demo-task.ts,
 * outline-draft-polish-task.ts.
 */
import type { TaskKindInfo } from '@infinitescribe/protocol';
import { z } from 'zod';
import type { AIProvider } from '../../adapters/ai/ai-provider.js';
import { AppError, UserSafeError } from '../../core/errors.js';

/** What a running task can use and tell, besides its input. */
export interface TaskRunContext {
  readonly taskId: string;
  /** Aborted on cancel, time-out and shutdown; a kind should stop promptly (the runner no longer waits for it). */
  readonly signal: AbortSignal;
  /** The configured AI provider (the one generations use). */
  readonly provider: AIProvider;
  /**
   * Reports progress: stage `stageIndex` (0-based, of the kind's stages) is `fraction` (0..1) done.
   * Cheap to call often: the runner keeps percent monotonic and throttles what it publishes.
   */
  progress(stageIndex: number, fraction: number, message?: string): void;
  /**
   * What the stages finished before a restart produced, by stage index (empty for a new task): a
   * task handed over by a clean stop continues on the next start, and a kind that recorded its
   * stages with {@link stageFinished} picks up after the last one instead of starting again.
   */
  readonly finishedStages: readonly unknown[];
  /** Records what stage `stageIndex` produced (JSON-serialisable), for {@link finishedStages} after a restart. */
  stageFinished(stageIndex: number, output: unknown): void;
}

/** {@link TaskRunContext} with the kind's validated input. */
export interface TaskContext<TInput> extends TaskRunContext {
  readonly input: TInput;
}

/** A kind of task. */
export interface TaskKind<TInput> {
  /** As clients name it in `POST /api/tasks` (`kind`). */
  readonly name: string;
  readonly description: string;
  /** Validates and normalises the request's `input` (absent input is `{}`). */
  readonly input: z.ZodType<TInput>;
  /** Stage names, in order (at least one): fixed, or worked out from the input. */
  readonly stages: readonly string[] | ((input: TInput) => readonly string[]);
  /**
   * Does the work, stage by stage, and resolves with the result (JSON-serialisable; it goes out in
   * `task.completed`). A throw fails the task in its current stage: the message of a
   * {@link TaskError}, an AppError or a ProviderError reaches the user, any other is logged only.
   */
  run(context: TaskContext<TInput>): Promise<unknown>;
}

/** A failure whose message is safe to show to the user (it becomes `task.failed.error`). */
export class TaskError extends UserSafeError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'TaskError';
  }
}

export type { TaskKindInfo };

/** A task ready to run: its input is validated and its stages known. */
export interface PreparedTask {
  kind: string;
  /** The validated input (journalled, so that the task can run again after a restart). */
  input: unknown;
  stages: readonly string[];
  run(context: TaskRunContext): Promise<unknown>;
}

/** A kind with its input type hidden, so kinds of different inputs can sit in one catalogue. */
export interface RunnableTaskKind {
  readonly name: string;
  info(): TaskKindInfo;
  /**
   * Validates `input` and binds it.
   * @throws AppError `invalid_request` naming every problem of the input.
   */
  prepare(input: unknown): PreparedTask;
}

/** Wraps a {@link TaskKind} for the catalogue. */
export function defineTaskKind<TInput>(kind: TaskKind<TInput>): RunnableTaskKind {
  const stagesOf = (input: TInput): readonly string[] => {
    const stages = typeof kind.stages === 'function' ? kind.stages(input) : kind.stages;
    if (stages.length === 0) throw new Error(`task kind "${kind.name}" has no stages`);
    return stages;
  };
  const describe = (): TaskKindInfo => {
    const defaults = kind.input.safeParse({});
    let stages: readonly string[] = [];
    if (typeof kind.stages !== 'function') stages = kind.stages;
    else if (defaults.success) stages = stagesOf(defaults.data);
    return {
      kind: kind.name,
      description: kind.description,
      stages: [...stages],
      input: z.toJSONSchema(kind.input, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>,
    };
  };
  let info: TaskKindInfo | undefined;
  return {
    name: kind.name,
    info() {
      info ??= describe();
      return info;
    },
    prepare(raw) {
      const parsed = kind.input.safeParse(raw ?? {});
      if (!parsed.success) {
        throw new AppError(
          'invalid_request',
          `invalid input for task kind "${kind.name}": ${z.prettifyError(parsed.error)}`,
        );
      }
      const input = parsed.data;
      return { kind: kind.name, input, stages: stagesOf(input), run: (context) => kind.run({ ...context, input }) };
    },
  };
}
