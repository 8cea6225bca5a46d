/**
 * What {@link TurnBatch}'s `execute` answers: one outcome per input, in the inputs' order, so one
 * input's failure (its part of a reply could not be decoded) is its own and not its batch's.
 */
export type BatchOutcome<O> = { ok: true; value: O } | { ok: false; error: unknown };

/** Options of {@link TurnBatch}. */
export interface TurnBatchOptions<I, O> {
  /** Runs one batch (never empty); a rejection fails every input of that batch with its reason. */
  execute: (inputs: readonly I[]) => Promise<readonly BatchOutcome<O>[]>;
  /**
   * Most weight one batch takes (each input weighs `weigh(input)`, 1 by default): a batch that
   * reaches it starts at once and the next input opens another. Bounds one call's size (a Redis
   * script blocks every other client while it runs). Default: no bound.
   */
  maxWeight?: number;
  weigh?: (input: I) => number;
  /**
   * Whether a batch that failed with `error` is run again input by input (in parallel), so that
   * only the inputs that cause it fail: for an error that one input can cause (Redis answered
   * with an error: a key of the wrong type), not for one that would fail them all anyway (a
   * timeout, an open breaker). Default: never.
   */
  retrySeparately?: (error: unknown) => boolean;
}

/**
 * Calls made during one event-loop turn, executed together once the turn's I/O callbacks have run
 * (one `setImmediate`): what costs a round trip and a system call each (a Redis script per stream)
 * costs one per turn instead. When many requests arrive at once (a reconnect storm: thousands of
 * streams resuming on one instance), a turn holds many of them, and the busier the process the
 * longer its turns and the larger its batches; at a quiet time a batch is one call, late by the
 * rest of its turn only.
 */
export class TurnBatch<I, O> {
  private inputs: I[] = [];
  private waiters: { resolve: (value: O) => void; reject: (error: unknown) => void }[] = [];
  private weight = 0;
  private scheduled: NodeJS.Immediate | undefined;

  constructor(private readonly options: TurnBatchOptions<I, O>) {}

  /** Adds `input` to this turn's batch; settles with its own outcome. */
  add(input: I): Promise<O> {
    const settled = new Promise<O>((resolve, reject) => {
      this.inputs.push(input);
      this.waiters.push({ resolve, reject });
    });
    this.weight += this.options.weigh?.(input) ?? 1;
    if (this.weight >= (this.options.maxWeight ?? Number.POSITIVE_INFINITY)) this.flush();
    else this.scheduled ??= setImmediate(this.flush);
    return settled;
  }

  /** Starts the pending batch now (also what the turn's `setImmediate` runs). */
  readonly flush = (): void => {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    if (this.inputs.length === 0) return;
    const inputs = this.inputs;
    const waiters = this.waiters;
    this.inputs = [];
    this.waiters = [];
    this.weight = 0;
    void this.run(inputs, waiters);
  };

  private async run(inputs: readonly I[], waiters: TurnBatch<I, O>['waiters']): Promise<void> {
    let outcomes: readonly BatchOutcome<O>[];
    try {
      outcomes = await this.options.execute(inputs);
    } catch (error) {
      if (inputs.length > 1 && this.options.retrySeparately?.(error) === true) {
        inputs.forEach((input, index) => void this.run([input], waiters.slice(index, index + 1)));
      } else {
        for (const waiter of waiters) waiter.reject(error);
      }
      return;
    }
    waiters.forEach((waiter, index) => {
      const outcome = outcomes[index];
      if (outcome === undefined) waiter.reject(new Error('the batch gave no outcome for this input'));
      else if (outcome.ok) waiter.resolve(outcome.value);
      else waiter.reject(outcome.error);
    });
  }
}
