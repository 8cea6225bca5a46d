/**
 * @module While long-polling, a streaming attempt every `intervalMs`: the network that buffered
 * streams may have changed (another Wi-Fi, a fixed proxy). Polling goes on meanwhile; a probe that
 * gets `connection.established` within `timeoutMs` is adopted as the live stream, any other
 * outcome just schedules the next probe.
 */
import type { Transport } from './transport.js';

/** Options of {@link StreamProbe}. */
export interface StreamProbeOptions {
  intervalMs: number;
  timeoutMs: number;
  /** Opens a streaming attempt whose handlers report as `id`; undefined when it could not start. */
  open: (id: number) => Promise<Transport | undefined>;
  /** A fresh attempt id, from the same sequence as the main attempts. */
  nextId: () => number;
}

/** Schedules and tracks one probe at a time. */
export class StreamProbe {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private current:
    { id: number; transport?: Transport | undefined; timeout?: ReturnType<typeof setTimeout> } | undefined;

  constructor(private readonly options: StreamProbeOptions) {}

  /** Schedules the next probe (replacing a scheduled one). */
  arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.start();
    }, this.options.intervalMs);
  }

  /** Whether `id` is the running probe. */
  owns(id: number): boolean {
    return this.current?.id === id;
  }

  /** The probe `id` failed (or timed out): drop it and schedule the next. */
  fail(id: number): void {
    if (!this.owns(id)) return;
    this.dropCurrent();
    this.arm();
  }

  /** The probe `id` is established: hands over its transport and stops probing. */
  adopt(id: number): Transport | undefined {
    if (!this.owns(id)) return undefined;
    const transport = this.current?.transport;
    clearTimeout(this.current?.timeout);
    this.current = undefined;
    this.stop();
    return transport;
  }

  /** Cancels the schedule and closes a running probe. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.dropCurrent();
  }

  private async start(): Promise<void> {
    const probe: NonNullable<typeof this.current> = { id: this.options.nextId() };
    this.current = probe;
    const transport = await this.options.open(probe.id);
    if (this.current !== probe) return transport?.close();
    if (!transport) return this.fail(probe.id);
    probe.transport = transport;
    probe.timeout = setTimeout(() => this.fail(probe.id), this.options.timeoutMs);
  }

  private dropCurrent(): void {
    clearTimeout(this.current?.timeout);
    this.current?.transport?.close();
    this.current = undefined;
  }
}
