/** Props of {@link ProgressBar}. */
export interface ProgressBarProps {
  /** What is progressing, for the accessible name. */
  label: string;
  /** 0–100. */
  percent: number;
  /** Stage names, in order (drawn as steps under the bar). */
  stages: readonly string[];
  /** Index of the current stage, if known. */
  stageIndex: number | undefined;
  /** The latest progress message. */
  message: string | undefined;
  /** Finished (every step done) or failed (the current step marked). */
  outcome?: 'completed' | 'failed' | 'cancelled' | undefined;
}

/** A stage-aware progress bar: the bar, the steps (done / current / to do), and a message. */
export function ProgressBar({ label, percent, stages, stageIndex, message, outcome }: ProgressBarProps) {
  const rounded = Math.round(Math.min(100, Math.max(0, percent)));
  const current = stageIndex === undefined ? undefined : stages[stageIndex];
  const valueText = [
    current && `${current} (step ${(stageIndex ?? 0) + 1} of ${stages.length})`,
    `${rounded}%`,
    message,
  ]
    .filter(Boolean)
    .join(', ');
  return (
    <div className="progress">
      <div
        className={`progress-track${outcome === 'failed' ? ' progress-failed' : ''}`}
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={rounded}
        aria-valuetext={valueText}
        data-testid="task-progress"
      >
        <div className="progress-fill" style={{ width: `${rounded}%` }} />
      </div>
      <ol className="progress-steps">
        {stages.map((stage, index) => {
          const state =
            outcome === 'completed' || (stageIndex !== undefined && index < stageIndex)
              ? 'done'
              : index === stageIndex
                ? outcome === 'failed'
                  ? 'failed'
                  : 'current'
                : 'todo';
          return (
            <li key={stage} className={`step step-${state}`} aria-current={state === 'current' ? 'step' : undefined}>
              <span className="step-mark" aria-hidden="true">
                {state === 'done' ? '✓' : state === 'failed' ? '!' : index + 1}
              </span>
              {stage}
              <span className="sr-only">{state === 'done' ? ' (done)' : state === 'todo' ? ' (to do)' : ''}</span>
            </li>
          );
        })}
      </ol>
      <p className="progress-message" data-testid="task-message">
        {message ?? '\u00a0'}
        <span className="progress-percent">{rounded}%</span>
      </p>
    </div>
  );
}
