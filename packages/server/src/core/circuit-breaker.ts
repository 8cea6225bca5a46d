/**
 * A circuit breaker per dependency (Redis, PostgreSQL), so a dead dependency is not hammered and
 * callers fail fast instead of each waiting out a connect timeout.
 *
 * closed ──(failureThreshold consecutive failures)──► open ──(coolDownMs)──► half_open
 *   ▲                                                  ▲                         │
 *   └──────────────(the one trial call succeeds)───────┼─────────────────────────┤
 *                                                      └──(the trial call fails)─┘
 *
 * Hand-written rather than opossum: opossum wraps one action per breaker with a percentage over a
 * rolling window and lets every call through while half-open; here one breaker guards every
 * operation on a dependency, opens on consecutive failures and lets exactly one trial through.
 */

/** Where a breaker stands. */
export type BreakerState = 'closed' | 'open' | 'half_open';

/** Options of {@link CircuitBreaker}. */
export interface CircuitBreakerOptions {
  /** The dependency's name, in errors and metrics (`redis`, `postgres`). */
  dependency: string;
  /** Consecutive failures that open the breaker. Default 3. */
  failureThreshold?: number;
  /** How long it stays open before letting one trial call through. Default 5 000 ms. */
  coolDownMs?: number;
  /** Which errors say the dependency is unwell (default: every error). Others pass through uncounted. */
  isFailure?: (error: unknown) => boolean;
  /** Told of every state change (and of the initial state), e.g. to set a gauge. */
  onStateChange?: (state: BreakerState, dependency: string) => void;
}

/** Thrown instead of calling a dependency whose breaker is open. */
export class CircuitOpenError extends Error {
  readonly dependency: string;
  constructor(dependency: string, lastError: string | undefined) {
    super(`${dependency} circuit breaker is open${lastError === undefined ? '' : ` (last error: ${lastError})`}`);
    this.name = 'CircuitOpenError';
    this.dependency = dependency;
  }
}

export class CircuitBreaker {
  readonly dependency: string;
  private current: BreakerState = 'closed';
  private failures = 0;
  private trialRunning = false;
  private coolDown: NodeJS.Timeout | undefined;
  private error: string | undefined;
  private readonly failureThreshold: number;
  private readonly coolDownMs: number;

  constructor(private readonly options: CircuitBreakerOptions) {
    this.dependency = options.dependency;
    this.failureThreshold = options.failureThreshold ?? 3;
    this.coolDownMs = options.coolDownMs ?? 5_000;
    options.onStateChange?.('closed', this.dependency);
  }

  get state(): BreakerState {
    return this.current;
  }

  /** Message of the last counted failure. */
  get lastError(): string | undefined {
    return this.error;
  }

  /** Whether a call would be let through now (closed, or half-open with no trial running). */
  get isCallPermitted(): boolean {
    return this.current === 'closed' || (this.current === 'half_open' && !this.trialRunning);
  }

  /**
   * Runs `operation` through the breaker.
   * @throws CircuitOpenError while open, and while half-open if another call is the trial.
   */
  async run<T>(operation: () => Promise<T>): Promise<T> {
    if (!this.isCallPermitted) throw new CircuitOpenError(this.dependency, this.error);
    const trial = this.current === 'half_open';
    if (trial) this.trialRunning = true;
    try {
      const result = await operation();
      this.recordSuccess();
      return result;
    } catch (error) {
      if (this.options.isFailure?.(error) ?? true) this.recordFailure(error);
      else if (trial) this.recordSuccess(); // the dependency answered, even if with an error
      throw error;
    } finally {
      if (trial) this.trialRunning = false;
    }
  }

  /** Counts a success observed outside {@link CircuitBreaker.run} (e.g. a connection came back). */
  recordSuccess(): void {
    this.failures = 0;
    if (this.current !== 'closed') this.transition('closed');
  }

  /** Counts a failure observed outside {@link CircuitBreaker.run} (e.g. a connection dropped). */
  recordFailure(error: unknown): void {
    this.error = error instanceof Error ? error.message || error.name : String(error);
    this.failures++;
    if (this.current === 'half_open' || (this.current === 'closed' && this.failures >= this.failureThreshold)) {
      this.transition('open');
    }
  }

  /** Stops the cool-down timer (on close of the owner). */
  dispose(): void {
    clearTimeout(this.coolDown);
  }

  private transition(state: BreakerState): void {
    this.current = state;
    clearTimeout(this.coolDown);
    if (state === 'open') {
      this.coolDown = setTimeout(() => this.transition('half_open'), this.coolDownMs);
      this.coolDown.unref();
    }
    this.options.onStateChange?.(state, this.dependency);
  }
}
