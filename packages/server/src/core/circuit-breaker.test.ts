import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CircuitBreaker, CircuitOpenError, type BreakerState } from './circuit-breaker.js';

const fail = () => Promise.reject(new Error('connection refused'));
const succeed = () => Promise.resolve('ok');

describe('CircuitBreaker', () => {
  let states: BreakerState[];
  let breaker: CircuitBreaker;

  beforeEach(() => {
    vi.useFakeTimers();
    states = [];
    breaker = new CircuitBreaker({
      dependency: 'db',
      failureThreshold: 3,
      coolDownMs: 1_000,
      onStateChange: (state) => states.push(state),
    });
  });
  afterEach(() => {
    breaker.dispose();
    vi.useRealTimers();
  });

  it('opens after consecutive failures only, and then fails fast without calling', async () => {
    await expect(breaker.run(fail)).rejects.toThrow('connection refused');
    await expect(breaker.run(fail)).rejects.toThrow('connection refused');
    await expect(breaker.run(succeed)).resolves.toBe('ok'); // resets the count
    for (let index = 0; index < 3; index++) await expect(breaker.run(fail)).rejects.toThrow('connection refused');
    expect(breaker.state).toBe('open');
    const operation = vi.fn(succeed);
    await expect(breaker.run(operation)).rejects.toBeInstanceOf(CircuitOpenError);
    await expect(breaker.run(operation)).rejects.toThrow(
      /db circuit breaker is open \(last error: connection refused\)/,
    );
    expect(operation).not.toHaveBeenCalled();
    expect(states).toEqual(['closed', 'open']);
  });

  it('lets exactly one trial through once the cool-down is over: success closes, failure reopens', async () => {
    for (let index = 0; index < 3; index++) await breaker.run(fail).catch(() => undefined);
    vi.advanceTimersByTime(999);
    expect(breaker.state).toBe('open');
    vi.advanceTimersByTime(1);
    expect(breaker.state).toBe('half_open');

    let finishTrial: (value: string) => void = () => undefined;
    const trial = breaker.run(() => new Promise<string>((resolve) => (finishTrial = resolve)));
    // Only one trial at a time: the others still fail fast.
    await expect(breaker.run(succeed)).rejects.toBeInstanceOf(CircuitOpenError);
    finishTrial('back');
    await expect(trial).resolves.toBe('back');
    expect(breaker.state).toBe('closed');

    for (let index = 0; index < 3; index++) await breaker.run(fail).catch(() => undefined);
    vi.advanceTimersByTime(1_000);
    await expect(breaker.run(fail)).rejects.toThrow('connection refused');
    expect(breaker.state).toBe('open'); // one failed trial is enough
    expect(states).toEqual(['closed', 'open', 'half_open', 'closed', 'open', 'half_open', 'open']);
  });

  it('does not count errors that say the dependency is up', async () => {
    const picky = new CircuitBreaker({
      dependency: 'db',
      failureThreshold: 1,
      isFailure: (error) => !(error instanceof SyntaxError),
    });
    await expect(picky.run(() => Promise.reject(new SyntaxError('bad statement')))).rejects.toThrow(SyntaxError);
    expect(picky.state).toBe('closed');
    picky.recordFailure(new Error('socket closed'));
    expect(picky.state).toBe('open');
    expect(picky.lastError).toBe('socket closed');
    picky.recordSuccess();
    expect(picky.state).toBe('closed');
    picky.dispose();
  });
});
