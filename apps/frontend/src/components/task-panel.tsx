import type { TaskCreated } from '@infinitescribe/protocol';
import { useTaskProgress } from '@infinitescribe/react';
import { useId, useRef, useState } from 'react';
import { ApiError, describeError, stringField, type ApiClient } from '../lib/api-client.js';
import { ProgressBar } from './progress-bar.js';
import { useToastHelpers } from './toasts.js';

const DEFAULT_STAGES = ['Outline', 'Draft', 'Polish'];
const PROMPT_CHARS = 8_000;

/** Props of {@link TaskPanel}. */
export interface TaskPanelProps {
  api: ApiClient;
  /** The document, sent as the task's prompt. */
  document: string;
  /** Adds the task's result to the document. */
  onInsert: (text: string) => void;
}

/**
 * The multi-stage "Outline → Draft → Polish" task (`POST /api/tasks`, kind
 * `outline-draft-polish`) with a stage-aware progress bar and the latest message.
 */
export function TaskPanel({ api, document, onInsert }: TaskPanelProps) {
  const [taskId, setTaskId] = useState<string | null>(null);
  const [isStarting, setStarting] = useState(false);
  const [unavailable, setUnavailable] = useState<string | null>(null);
  const startRequested = useRef(false);
  const progress = useTaskProgress(taskId);
  const toast = useToastHelpers();
  const titleId = useId();
  const isRunning = isStarting || (taskId !== null && progress.isRunning);

  const stageCount = progress.stageCount ?? DEFAULT_STAGES.length;
  const stages = Array.from({ length: stageCount }, (_, index) =>
    index === progress.stageIndex && progress.stage ? progress.stage : (DEFAULT_STAGES[index] ?? `Stage ${index + 1}`),
  );
  const resultText = textOf(progress.result);

  const start = async () => {
    if (startRequested.current || isRunning || document.trim() === '') return;
    startRequested.current = true;
    setStarting(true);
    try {
      const body = await api.post('/api/tasks', {
        kind: 'outline-draft-polish',
        input: { prompt: document.slice(-PROMPT_CHARS) },
      });
      const id = stringField<TaskCreated>(body, 'taskId');
      if (!id) throw new Error('The server did not return a task id.');
      setTaskId(id);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        setUnavailable('Multi-stage tasks are not available on this server yet.');
      } else {
        toast.error('Could not start the task', describeError(error));
      }
    } finally {
      startRequested.current = false;
      setStarting(false);
    }
  };

  const cancel = async () => {
    if (taskId === null) return;
    try {
      await api.post(`/api/tasks/${encodeURIComponent(taskId)}/cancel`);
    } catch (error) {
      toast.error('Could not cancel the task', describeError(error));
    }
  };

  const outcome =
    progress.status === 'completed' || progress.status === 'failed' || progress.status === 'cancelled'
      ? progress.status
      : undefined;

  return (
    <section className="card task" aria-labelledby={titleId}>
      <h2 id={titleId}>Outline → Draft → Polish</h2>
      <p className="muted">Turns your document into an outline, a draft, then a polished passage.</p>
      <div className="editor-actions">
        {isRunning ? (
          <button
            type="button"
            className="button"
            onClick={() => void cancel()}
            disabled={taskId === null}
            data-testid="task-cancel"
          >
            Cancel task
          </button>
        ) : (
          <button
            type="button"
            className="button"
            onClick={() => void start()}
            disabled={unavailable !== null || document.trim() === ''}
            data-testid="task-start"
          >
            {taskId === null ? 'Start' : 'Run again'}
          </button>
        )}
        {unavailable && (
          <p className="status-line" role="status">
            {unavailable}
          </p>
        )}
      </div>
      {(taskId !== null || isStarting) && (
        <ProgressBar
          label="Outline, draft and polish"
          percent={progress.percent}
          stages={stages}
          stageIndex={progress.stageIndex}
          message={
            progress.status === 'failed'
              ? `Failed: ${progress.error ?? 'unknown error'}`
              : progress.status === 'cancelled'
                ? 'Cancelled.'
                : progress.status === 'completed'
                  ? 'Done.'
                  : (progress.message ?? (progress.status === 'queued' ? 'Waiting to start…' : 'Starting…'))
          }
          outcome={outcome}
        />
      )}
      {progress.status === 'completed' && resultText && (
        <div className="task-result">
          <h3>Result</h3>
          <p className="task-result-text" data-testid="task-result">
            {resultText}
          </p>
          <button type="button" className="button" onClick={() => onInsert(resultText)}>
            Insert into document
          </button>
        </div>
      )}
    </section>
  );
}

/** The result's text: a string, or a `text`/`polished`/`draft` field. */
function textOf(result: unknown): string | undefined {
  if (typeof result === 'string') return result;
  return stringField(result, 'text') ?? stringField(result, 'polished') ?? stringField(result, 'draft');
}
