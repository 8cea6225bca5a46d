import { isValidTopic, validateEventPayload } from '@infinitescribe/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type { EventBus } from '../bus/event-bus.js';
import { InvalidEventError, UnavailableError } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import type { EventStore } from '../store/event-store.js';
import type { EventRecord } from './event-record.js';
import { isJournalEventType, validateJournalEvent } from '../jobs/journal-events.js';

/** What to publish. */
export interface PublishInput {
  topic: string;
  type: string;
  payload: unknown;
  /** Persist in the store before acknowledging. */
  critical?: boolean;
}

/** Options of {@link EventPublisher}. */
export interface EventPublisherOptions {
  bus: EventBus;
  store: EventStore;
  metrics: Metrics;
  logger: FastifyBaseLogger;
  now?: () => Date;
}

/**
 * The event path of DESIGN.md: validate against the catalogue, then id + hot log + fan-out (one
 * atomic bus step), then for critical events the store, before the caller may acknowledge.
 */
export class EventPublisher {
  private readonly now: () => Date;

  constructor(private readonly options: EventPublisherOptions) {
    this.now = options.now ?? (() => new Date());
  }

  /**
   * Publishes one event and resolves with its record once it is as durable as asked.
   * @throws InvalidEventError for a bad topic, unknown type or payload failing its schema.
   * @throws UnavailableError (`store_unavailable`) when a critical event could not be stored:
   *   the store is down (its breaker fails this fast while open) or the append failed. Never
   *   acknowledged then lost: the caller gets the record only once the store has it.
   * @throws UnavailableError (`bus_unavailable`) when the bus refused or failed the publish: Redis
   *   failed or timed out mid-publish (outcome unknown), or a critical event while Redis is
   *   unreachable (only local delivery works then).
   */
  async publish(input: PublishInput): Promise<EventRecord> {
    const { record, stored } = await this.publishLive(input);
    await stored;
    return record;
  }

  /**
   * {@link publish} in two steps, for callers whose next event must follow this one but need not
   * wait for the store (a generation's first delta after its `started`): resolves once the event
   * has its id and is fanned out; `stored` settles once it is as durable as asked (at once for an
   * ephemeral event) and rejects as {@link publish} would. The caller must still await `stored`
   * before acknowledging anything.
   */
  async publishLive(input: PublishInput): Promise<{ record: EventRecord; stored: Promise<EventRecord> }> {
    if (typeof input.topic !== 'string' || !isValidTopic(input.topic)) {
      throw new InvalidEventError(`topic ${JSON.stringify(input.topic)} is not a valid topic`);
    }
    const validation = isJournalEventType(input.type)
      ? validateJournalEvent(input.topic, input.type, input.payload)
      : validateEventPayload(input.type, input.payload);
    if (!validation.ok) throw new InvalidEventError(validation.message);
    const critical = input.critical === true;
    if (critical) await this.assertStoreUp();

    let record: EventRecord;
    try {
      record = await this.options.bus.publish({
        topic: input.topic,
        type: validation.type,
        payload: validation.payload,
        ts: this.now().toISOString(),
        critical,
      });
    } catch (error) {
      this.options.logger.warn({ err: error, topic: input.topic }, 'event not published: the bus failed');
      const reason = error instanceof Error ? error.message : String(error);
      throw new UnavailableError('bus_unavailable', `the event bus is unavailable: ${reason}`, error);
    }
    this.options.metrics.eventsPublished.inc({ type: record.type });
    const stored = critical ? this.store(record) : Promise.resolve(record);
    // Awaited by the caller later, maybe after other awaits: not an unhandled rejection meanwhile.
    stored.catch(() => undefined);
    return { record, stored };
  }

  private async store(record: EventRecord): Promise<EventRecord> {
    try {
      await this.options.store.append(record);
      return record;
    } catch (error) {
      // Already fanned out live, but not durable: the caller must not be told it is stored.
      this.options.logger.error({ err: error, eventId: record.id }, 'critical event not stored');
      throw new UnavailableError(
        'store_unavailable',
        'the event store is unavailable; the event was not stored',
        error,
      );
    }
  }

  /** Refuses a critical publish up front when the store is known to be down, before an id is spent. */
  private async assertStoreUp(): Promise<void> {
    const health = await this.options.store.health();
    if (health.status === 'down') {
      throw new UnavailableError('store_unavailable', `the event store is unavailable: ${health.detail ?? 'down'}`);
    }
  }
}
