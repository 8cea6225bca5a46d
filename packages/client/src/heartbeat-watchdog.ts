/**
 * @module Liveness watchdog of a live stream. The server sends `heartbeat` every HEARTBEAT_MS but
 * never says how often, so the watchdog starts from a configured interval and learns the real one
 * from the gaps it sees. A stream silent for `factor ×` that interval is declared dead: a proxy or
 * NAT can drop a connection without either end noticing, and only silence tells.
 */

/** Options of {@link HeartbeatWatchdog}. */
export interface HeartbeatWatchdogOptions {
  /** Interval assumed until one is observed. */
  heartbeatMs: number;
  /** Silence longer than `factor ×` interval is a dead stream. */
  factor: number;
  now: () => number;
  onTimeout: () => void;
}

/** Gaps remembered for learning; their maximum is the interval (one short gap cannot shrink it). */
const LEARNED_GAPS = 3;

/** Fires `onTimeout` once a started stream has been silent for too long. */
export class HeartbeatWatchdog {
  private readonly gaps: number[] = [];
  private lastHeartbeatAt: number | undefined;
  private lastTrafficAt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly options: HeartbeatWatchdogOptions) {}

  /** The interval the watchdog expects: learned from heartbeats, else the configured one. */
  get intervalMs(): number {
    return this.gaps.length > 0 ? Math.max(...this.gaps) : this.options.heartbeatMs;
  }

  /** Silence that counts as a dead stream. */
  get timeoutMs(): number {
    return this.intervalMs * this.options.factor;
  }

  /** Starts watching a new stream. Learned gaps are kept: the server's interval did not change. */
  start(): void {
    this.stop();
    this.lastHeartbeatAt = undefined;
    this.lastTrafficAt = this.options.now();
    this.arm(this.timeoutMs);
  }

  /** Any frame proves the stream alive; a heartbeat also teaches the interval. */
  touch(isHeartbeat: boolean): void {
    const now = this.options.now();
    this.lastTrafficAt = now;
    if (!isHeartbeat) return;
    if (this.lastHeartbeatAt !== undefined) {
      this.gaps.push(now - this.lastHeartbeatAt);
      if (this.gaps.length > LEARNED_GAPS) this.gaps.shift();
    }
    this.lastHeartbeatAt = now;
    // The interval may have shrunk: re-arm from now (heartbeats are rare, so this is cheap).
    if (this.timer !== undefined) {
      this.stop();
      this.arm(this.timeoutMs);
    }
  }

  /**
   * Checks silence now instead of when the timer fires: background tabs throttle timers, so a
   * page coming back to the foreground asks at once.
   */
  check(): void {
    if (this.timer === undefined) return;
    this.fireOrRearm();
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(delayMs: number): void {
    // One timer per stream, re-armed only when it fires: frames just stamp a time, so a burst of
    // deltas does not churn timers.
    this.timer = setTimeout(() => this.fireOrRearm(), Math.max(0, delayMs));
  }

  private fireOrRearm(): void {
    this.stop();
    const silentFor = this.options.now() - this.lastTrafficAt;
    if (silentFor >= this.timeoutMs) {
      this.options.onTimeout();
      return;
    }
    this.arm(this.timeoutMs - silentFor);
  }
}
