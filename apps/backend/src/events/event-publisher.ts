import { isValidTopic } from '@infinitescribe/protocol';
import { validateEventPayload } from '@infinitescribe/protocol/schemas';
import type { FastifyBaseLogger } from 'fastify';
import type { EventBus } from '../bus/event-bus.js';
import { InvalidEventError, UnavailableError } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import type { EventStore } from '../store/event-store.js';
import type { ComponentHealth, EventRecord } from './event-record.js';
import { isJournalEventType, validateJournalEvent } from '../jobs/journal-events.js';

/** How long one store probe answers for every critical publish. */
const STORE_PROBE_TTL_MS = 1_000;

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
 * The event path (docs/architecture.md): validate against the catalogue, then id + hot log + fan-out (one
 * atomic bus step), then for critical events the store, before the caller may acknowledge.
 */
export class EventPublisher {
  private readonly now: () => Date;
  private storeProbe: { at: number; health: Promise<ComponentHealth> } | undefined;

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
    if (critical) await this.store(record);
    return record;
  }

  private async store(record: EventRecord): Promise<void> {
    try {
      await this.options.store.append(record);
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

  /**
   * Refuses a critical publish up front when the store is down, before an id is spent and the
   * event fanned out: at once when the store knows it (closed, breaker open), else by a probe that
   * answers `up` for {@link STORE_PROBE_TTL_MS} (a database round trip per publish would halve the
   * store's throughput; a store that died less than that ago is caught by the append instead).
   */
  private async assertStoreUp(): Promise<void> {
    const now = Date.now();
    if (this.storeProbe === undefined || now - this.storeProbe.at >= STORE_PROBE_TTL_MS) {
      this.storeProbe = { at: now, health: this.options.store.health() };
    }
    const probe = this.storeProbe;
    const down = this.options.store.knownDown() ?? (await probe.health);
    if (down.status === 'down') {
      // Only `up` is shared: while down, every critical publish asks again, so recovery is seen at once.
      if (this.storeProbe === probe) this.storeProbe = undefined;
      throw new UnavailableError('store_unavailable', `the event store is unavailable: ${down.detail ?? 'down'}`);
    }
  }
}
