import { ProviderError } from './ai-provider.js';

/** AI_CONNECT_TIMEOUT_MS, AI_IDLE_TIMEOUT_MS, AI_TOTAL_TIMEOUT_MS. */
export interface ProviderTimeouts {
  /** Until the response begins (headers; for the AI SDK adapter, its first streamed part). */
  connectTimeoutMs: number;
  /** Between two pieces of the streamed body (a stalled stream). */
  idleTimeoutMs: number;
  /** The whole request. */
  totalTimeoutMs: number;
}

/**
 * The deadlines of one provider request and the caller's abort, as one signal to hand to the HTTP
 * client: it aborts with the {@link ProviderError} that says why (`timeout` or `aborted`). Our own
 * timers rather than the HTTP client's: undici's tick at one-second resolution, and the AI SDK has
 * no time limit until the response begins.
 */
export class RequestDeadlines {
  private readonly controller = new AbortController();
  private phaseTimer: NodeJS.Timeout;
  private readonly totalTimer: NodeJS.Timeout;
  private readonly onCallerAbort = () => this.abort(new ProviderError('aborted', 'the generation was aborted'));

  constructor(
    private readonly callerSignal: AbortSignal,
    private readonly timeouts: ProviderTimeouts,
  ) {
    if (callerSignal.aborted) this.onCallerAbort();
    callerSignal.addEventListener('abort', this.onCallerAbort, { once: true });
    this.totalTimer = setTimeout(
      () =>
        this.abort(new ProviderError('timeout', `the provider did not finish within ${timeouts.totalTimeoutMs} ms`)),
      timeouts.totalTimeoutMs,
    );
    this.phaseTimer = setTimeout(() => this.abort(this.connectTimeout()), timeouts.connectTimeoutMs);
  }

  /** Aborted when the caller aborts or a deadline passes. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Why the request was aborted, once it was. */
  get reason(): ProviderError | undefined {
    const reason: unknown = this.controller.signal.reason;
    return this.controller.signal.aborted && reason instanceof ProviderError ? reason : undefined;
  }

  /** The error of the connect deadline (also for the HTTP client's own connect timeout). */
  connectTimeout(): ProviderError {
    return new ProviderError('timeout', `the provider sent no response within ${this.timeouts.connectTimeoutMs} ms`);
  }

  /**
   * The response has begun: the connect deadline gives way to the idle one, which fails the
   * request once `lastDataAt()` (`Date.now()` of the last data) is longer ago than the idle
   * timeout. One timer for the whole body, not one per read: it checks when data last came and
   * re-arms for the rest of the window.
   */
  responded(lastDataAt: () => number): void {
    clearTimeout(this.phaseTimer);
    const { idleTimeoutMs } = this.timeouts;
    const checkIdle = () => {
      const quietFor = Date.now() - lastDataAt();
      if (quietFor >= idleTimeoutMs) {
        this.abort(new ProviderError('timeout', `the provider sent nothing for ${idleTimeoutMs} ms`));
      } else this.phaseTimer = setTimeout(checkIdle, idleTimeoutMs - quietFor);
    };
    this.phaseTimer = setTimeout(checkIdle, idleTimeoutMs);
  }

  abort(error: ProviderError): void {
    if (!this.controller.signal.aborted) this.controller.abort(error);
  }

  /** Stops the timers and lets go of the caller's signal. */
  dispose(): void {
    clearTimeout(this.phaseTimer);
    clearTimeout(this.totalTimer);
    this.callerSignal.removeEventListener('abort', this.onCallerAbort);
  }
}
