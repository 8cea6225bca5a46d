import { isValidTopic } from '@infinitescribe/protocol';
import type { FastifyBaseLogger } from 'fastify';
import { randomBytes } from 'node:crypto';
import { PublishRefusedError, type EventBus } from '../../adapters/bus/event-bus.js';
import { InvalidEventError, UnavailableError } from '../../core/errors.js';
import type { Metrics } from '../../adapters/observability/metrics.js';
import type { EventStore, KeyedEventRecord, PendingEvent } from '../../adapters/store/event-store.js';
import type { EventDraft, EventRecord } from '../../core/event-record.js';
import { isJournalEventType, validateJournalEvent } from '../../core/journal-events.js';
import { EventCatalog } from './event-types.js';
import { serialisePayload } from './payload-json.js';

/** Retries of a confirmation the store refused (then the repair pass takes over). */
const CONFIRM_RETRIES = 10;
const CONFIRM_RETRY_MAX_MS = 30_000;

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
  /** The types publishes are validated against (default: the built-in catalogue only). */
  catalog?: EventCatalog;
  now?: () => Date;
}

/**
 * The event path (docs/architecture.md): validate against the catalogue and serialise the payload once, then
 * id + hot log + fan-out (one atomic bus step).
 *
 * Critical events are durable before visible (docs/architecture.md): they are (a) stored *pending* under a
 * fresh key, with no id, then (b) published, the bus assigning the id and carrying the key, then
 * (c) confirmed: the stored row gets its id (group commit batches (a) and (c) writes of concurrent
 * publishes into one statement). Only then is the publish acknowledged. Ids stay one space assigned
 * by the bus, in publish order, and nothing waits behind a critical event (no head-of-line
 * blocking): a later event is never held back, it simply gets a higher id.
 * - (a) fails: 503 `store_unavailable`, nothing was published anywhere.
 * - (b) refused (Redis unreachable): 503 `bus_unavailable`, the pending row is deleted at once.
 *   (b) failed with an unknown outcome: 503 `bus_unavailable`; the repair pass decides later.
 * - (c) fails: the event is stored (pending) and published; it is retried here, and the repair
 *   pass (pending-event-repair.ts) confirms it from the hot log otherwise; the publish is answered.
 * Readers never see a pending row by id: a resume reads the hot log, which has the event from (b)
 * on, and job reads look there too (job-journal.ts).
 */
export class EventPublisher {
  private readonly now: () => Date;
  private readonly catalog: EventCatalog;
  private readonly observers = new Set<(record: EventRecord) => void>();

  constructor(private readonly options: EventPublisherOptions) {
    this.now = options.now ?? (() => new Date());
    this.catalog = options.catalog ?? new EventCatalog();
  }

  /**
   * Publishes one event and resolves with its record once it is as durable as asked.
   * @throws InvalidEventError for a bad topic, unknown type, payload failing its schema, nesting
   *   deeper than MAX_PAYLOAD_DEPTH or holding what JSON cannot represent (nothing is published).
   * @throws UnavailableError (`store_unavailable`) when a critical event could not be stored: it
   *   was not published either, to anyone.
   * @throws UnavailableError (`bus_unavailable`) when the bus refused or failed the publish: Redis
   *   failed or timed out mid-publish (outcome unknown), or refused it while unreachable (a critical
   *   event, or this instance has no id slot for local delivery).
   */
  async publish(input: PublishInput): Promise<EventRecord> {
    const draft = this.draft(input);
    const record = draft.critical
      ? await this.publishCritical({ ...draft, key: randomBytes(12).toString('base64url') })
      : await this.publishOnBus(draft);
    for (const observer of this.observers) {
      try {
        observer(record);
      } catch (error) {
        this.options.logger.warn({ err: error, type: record.type }, 'a publish observer failed');
      }
    }
    return record;
  }

  /**
   * Calls `observer` with each event this publisher published, once it is as durable as asked
   * (what follows a job's outcome without editing the job's code: conversations record answers).
   * Synchronous and isolated: a throw is logged, never fails the publish. Returns the unsubscribe.
   */
  observe(observer: (record: EventRecord) => void): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /** Validates and serialises: everything that can refuse an event happens before it has an id. */
  private draft(input: PublishInput): EventDraft {
    if (typeof input.topic !== 'string' || !isValidTopic(input.topic)) {
      throw new InvalidEventError(`topic ${JSON.stringify(input.topic)} is not a valid topic`);
    }
    const validation = isJournalEventType(input.type)
      ? validateJournalEvent(input.topic, input.type, input.payload)
      : this.catalog.validate(input.type, input.payload);
    if (!validation.ok) throw new InvalidEventError(validation.message);
    return {
      topic: input.topic,
      type: validation.type,
      payload: validation.payload,
      payloadJson: serialisePayload(validation.payload),
      ts: this.now().toISOString(),
      critical: input.critical ?? this.catalog.criticalByDefault(validation.type),
    };
  }

  private async publishCritical(pending: PendingEvent): Promise<EventRecord> {
    const { store, logger } = this.options;
    const known = store.knownDown();
    if (known) throw storeUnavailable(known);
    try {
      await store.insertPending(pending);
    } catch (error) {
      logger.warn({ err: error, topic: pending.topic }, 'critical event not stored, so not published');
      throw storeUnavailable(error);
    }
    let record: EventRecord;
    try {
      record = await this.publishOnBus(pending);
    } catch (error) {
      // Certainly not out: the row goes now. Outcome unknown: the repair pass decides from the hot log.
      if (error instanceof UnavailableError && error.cause instanceof PublishRefusedError) {
        store.discardPending(pending.key).catch((discardError: unknown) => {
          logger.warn({ err: discardError }, 'pending critical event not deleted; the repair pass will');
        });
      }
      throw error;
    }
    await this.confirm({ ...record, key: pending.key });
    return record;
  }

  private async publishOnBus(draft: EventDraft): Promise<EventRecord> {
    let record: EventRecord;
    try {
      record = await this.options.bus.publish(draft);
    } catch (error) {
      this.options.logger.warn({ err: error, topic: draft.topic }, 'event not published: the bus failed');
      const reason = error instanceof Error ? error.message : String(error);
      throw new UnavailableError('bus_unavailable', `the event bus is unavailable: ${reason}`, error);
    }
    this.options.metrics.eventsPublished.inc({ type: record.type });
    return record;
  }

  /**
   * Step (c). A store that fails now (it answered (a) moments ago) does not undo the publish: the
   * event is stored pending and visible, so the caller gets its answer and the id is set later,
   * here or by the repair pass.
   */
  private async confirm(record: KeyedEventRecord, attempt = 0): Promise<void> {
    try {
      await this.options.store.confirm(record);
    } catch (error) {
      if (attempt >= CONFIRM_RETRIES) {
        this.options.logger.error(
          { err: error, eventId: record.id },
          'critical event left pending for the repair pass',
        );
        return;
      }
      if (attempt === 0) {
        this.options.logger.warn(
          { err: error, eventId: record.id },
          'id of a stored critical event not set yet; retrying',
        );
      }
      const delay = Math.min(CONFIRM_RETRY_MAX_MS, 500 * 2 ** attempt);
      setTimeout(() => void this.confirm(record, attempt + 1), delay).unref();
    }
  }
}

function storeUnavailable(cause: unknown): UnavailableError {
  return new UnavailableError(
    'store_unavailable',
    'the event store is unavailable; the event was not published',
    cause,
  );
}
