import type { FastifyBaseLogger } from 'fastify';
import type { EventBus, Unsubscribe } from '../../adapters/bus/event-bus.js';
import type { EventPublisher } from '../events/event-publisher.js';
import type { EventRecord } from '../../core/event-record.js';
import { JOB_CONTROL_TOPIC, type JournalPayload } from '../../core/journal-events.js';

/** Options of {@link JobCancels}. */
export interface JobCancelsOptions {
  bus: EventBus;
  publisher: EventPublisher;
  logger: FastifyBaseLogger;
  /** Told of each cancel request; the job may run elsewhere (then there is nothing to do). */
  onCancel: (jobId: string, userId: string) => void;
}

/**
 * Cancels across instances. A cancel request may land on an instance that does not run the job:
 * that instance publishes the job's outcome (`cancelled`, critical) itself, then asks the instance
 * running it to stop, on {@link JOB_CONTROL_TOPIC}. That topic is server-internal: the API refuses
 * to publish there (and refuses `ai.generation.*` / `task.*` types anywhere), so only the server
 * can stop a job. The owner never listens on the user's own topic for this.
 */
export class JobCancels {
  private listening: Promise<Unsubscribe> | undefined;

  constructor(private readonly options: JobCancelsOptions) {}

  /**
   * Starts hearing cancel requests (once; later calls share the first). Resolves once the
   * subscription is active; never rejects (a failure is logged: cancels from other instances then
   * do not reach this one's jobs, which still end by their time limit).
   */
  async listen(): Promise<void> {
    this.listening ??= this.options.bus.subscribe(JOB_CONTROL_TOPIC, (event) => this.onControl(event));
    await this.listening.catch((error: unknown) => {
      this.options.logger.warn({ err: error }, 'cancels from other instances will not reach jobs running here');
    });
  }

  /** Asks the instance running `jobId` to stop it (its outcome is published already). */
  async request(jobId: string, userId: string): Promise<void> {
    const payload: JournalPayload<'journal.cancel'> = { jobId, userId };
    await this.options.publisher.publish({ topic: JOB_CONTROL_TOPIC, type: 'journal.cancel', payload });
  }

  async close(): Promise<void> {
    const listening = this.listening;
    this.listening = undefined;
    const unsubscribe = await listening?.catch(() => undefined);
    await unsubscribe?.().catch(() => undefined);
  }

  private onControl(event: EventRecord): void {
    if (event.type !== 'journal.cancel') return;
    const { jobId, userId } = event.payload as JournalPayload<'journal.cancel'>;
    this.options.onCancel(jobId, userId);
  }
}
