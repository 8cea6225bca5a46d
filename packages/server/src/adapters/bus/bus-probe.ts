/**
 * The self-addressed probe of the Redis bus (docs/http-api.md, /readyz): every `intervalMs` the instance
 * PUBLISHes a nonce on its own probe channel, which its subscriber connection listens to, and
 * expects it back within `timeoutMs`. A PING on the command connection cannot see a subscriber
 * that is connected but deaf (a half-open TCP flow, a frozen middlebox, a subscription the
 * server dropped): the probe travels the exact path live events take.
 *
 * Probes go out whenever the command connection works, whether or not the subscriber is
 * connected: a subscriber that cannot get back while Redis answers commands leaves this instance
 * deaf too (its own publishes go through Redis and never come back), which is no mere blip once
 * it lasts longer than `timeoutMs`. When Redis does not answer at all, the bus is degraded
 * (local delivery), not wedged, and no probe is pending.
 *
 * The probe is raw bus traffic, not a catalogue event: it never gets an id, never enters the hot
 * log, and its channel (`{prefix}:probe:<id>`) is outside the topic channels (`{prefix}:ch:…`),
 * so no client can subscribe to it.
 */

/** Options of {@link BusProbe}. */
export interface BusProbeOptions {
  intervalMs: number;
  /** How long a probe may take to come back before the subscriber counts as wedged. */
  timeoutMs: number;
  /** PUBLISHes `nonce` on the probe channel; resolves with the receiver count Redis reports. */
  send(nonce: string): Promise<number>;
  /** Whether Redis takes commands (when it does not, the bus is degraded, not wedged). */
  canSend(): boolean;
  /** Told once per wedge, when a probe is overdue or Redis says nobody listens on the channel. */
  onWedged(detail: string): void;
}

export class BusProbe {
  private timer: NodeJS.Timeout | undefined;
  private counter = 0;
  /** Send time of the oldest probe not answered yet. */
  private oldestPending: number | undefined;
  private latestSent: { nonce: string; at: number } | undefined;
  /** Consecutive probes Redis delivered to nobody (two in a row: not a re-subscribe race). */
  private unheard = 0;
  private reported = false;

  constructor(private readonly options: BusProbeOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Why the subscriber counts as wedged, or undefined while probes come back in time. */
  wedged(now = Date.now()): string | undefined {
    if (!this.options.canSend()) return undefined;
    if (this.unheard >= 2) return 'subscriber wedged: Redis reports no subscriber on the probe channel';
    if (this.oldestPending !== undefined && now - this.oldestPending > this.options.timeoutMs) {
      return `subscriber wedged: a probe published ${now - this.oldestPending} ms ago has not come back`;
    }
    return undefined;
  }

  /** A message on the probe channel. */
  received(nonce: string): void {
    if (this.latestSent === undefined) return;
    // Messages arrive in order: this one answers itself and every probe sent before it.
    if (nonce === this.latestSent.nonce) this.oldestPending = undefined;
    else if (this.oldestPending !== undefined) this.oldestPending = this.latestSent.at;
    this.unheard = 0;
    this.reported = false;
  }

  /** Forgets pending probes (the subscriber reconnected and re-read the log: it is not deaf). */
  reset(): void {
    this.oldestPending = undefined;
    this.unheard = 0;
    this.reported = false;
  }

  /** One round: report an overdue probe, then send the next. Exposed for tests. */
  async tick(): Promise<void> {
    if (!this.options.canSend()) return this.reset();
    const wedged = this.wedged();
    if (wedged !== undefined && !this.reported) {
      this.reported = true;
      this.options.onWedged(wedged);
    }
    const at = Date.now();
    const nonce = `${at}-${this.counter++}`;
    this.latestSent = { nonce, at };
    this.oldestPending ??= at;
    try {
      const receivers = await this.options.send(nonce);
      this.unheard = receivers === 0 ? this.unheard + 1 : 0;
    } catch {
      // The command connection failed: the breaker and connection state report that.
    }
  }
}
