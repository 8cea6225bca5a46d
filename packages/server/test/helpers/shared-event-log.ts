import type { FastifyBaseLogger } from 'fastify';
import { MemoryEventBus } from '../../src/adapters/bus/memory-event-bus.js';
import { idFloorAt } from '../../src/core/event-id.js';
import { EventPublisher } from '../../src/services/events/event-publisher.js';
import { createLogger } from '../../src/adapters/observability/logger.js';
import { Metrics } from '../../src/adapters/observability/metrics.js';
import type { EventStore } from '../../src/adapters/store/event-store.js';
import { PgliteEventStore } from '../../src/adapters/store/pglite-event-store.js';

/** The store's writes, refused while it is down. */
const WRITES = new Set<string | symbol>(['append', 'insertPending', 'confirm', 'discardPending']);
/** Those a publish makes once the bus has the event. */
const LATE_WRITES = new Set<string | symbol>(['append', 'confirm']);

/** One bus and one store shared by several service instances in one process, with a store that can be taken down. */
export interface SharedEventLog {
  bus: MemoryEventBus;
  /** The real store (reads bypass the switch). */
  store: PgliteEventStore;
  /** Publishes through the switchable store. */
  publisher: EventPublisher;
  logger: FastifyBaseLogger;
  /** While down, the publisher's store reports `down` and refuses writes, as a dead database does. */
  setStoreDown(down: boolean): void;
  /**
   * Delays the store writes a publish makes after the bus has the event (confirming a critical
   * event's id; appending one), as a store slow to commit does.
   */
  setLateWriteDelay(ms: number): void;
  close(): Promise<void>;
}

/**
 * The event log as several instances behind a load balancer with Redis and PostgreSQL see it,
 * in one process: an in-memory bus and an in-memory PGlite store, shared.
 */
export async function openSharedEventLog(): Promise<SharedEventLog> {
  const bus = new MemoryEventBus({ maxEvents: 10_000, maxAgeMs: 3_600_000 });
  await bus.start({ idFloor: idFloorAt(Date.now() - 60_000), coveredFrom: 0 });
  const store = new PgliteEventStore();
  await store.init();
  const logger = createLogger({ level: 'silent' }) as FastifyBaseLogger;
  let storeDown = false;
  let lateWriteDelayMs = 0;
  const down = { status: 'down', detail: 'test' } as const;
  const switchable = new Proxy(store, {
    get(target, property, receiver) {
      if (storeDown && property === 'knownDown') return () => down;
      if (storeDown && property === 'health') return async () => down;
      if (storeDown && WRITES.has(property)) return async () => Promise.reject(new Error('store down'));
      if (lateWriteDelayMs > 0 && LATE_WRITES.has(property)) {
        const write = Reflect.get(target, property, receiver) as (...args: unknown[]) => Promise<void>;
        return async (...args: unknown[]) => {
          await new Promise((resolve) => setTimeout(resolve, lateWriteDelayMs));
          return write.apply(target, args);
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  }) as EventStore;
  const publisher = new EventPublisher({
    bus,
    store: switchable,
    metrics: new Metrics({ defaultMetrics: false }),
    logger,
  });
  return {
    bus,
    store,
    publisher,
    logger,
    setStoreDown: (value) => {
      storeDown = value;
    },
    setLateWriteDelay: (ms) => {
      lateWriteDelayMs = ms;
    },
    close: async () => {
      await bus.close();
      await store.close();
    },
  };
}
