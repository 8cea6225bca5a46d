import type { CircuitBreakerOptions } from '../../core/circuit-breaker.js';
import type { EventStore } from './event-store.js';
import { PgliteEventStore } from './pglite-event-store.js';
import { PostgresEventStore } from './postgres-event-store.js';
import type { StoreLogger } from './store-logger.js';

/** Options of {@link createEventStore}. */
export interface CreateEventStoreOptions {
  /** PostgreSQL connection string (`DATABASE_URL`); unset or empty selects embedded PGlite. */
  databaseUrl?: string;
  /** Folder of the embedded database (e.g. `./data/pglite`); ignored when `databaseUrl` is set. */
  dataDir: string;
  /** Passed to the PostgreSQL adapter for dropped-connection warnings. */
  logger?: StoreLogger;
  /** Breaker settings of the PostgreSQL adapter (the embedded store needs none). */
  breaker?: Pick<CircuitBreakerOptions, 'failureThreshold' | 'coolDownMs' | 'onStateChange'>;
}

/** The configured store, not yet initialised: call `init()` before use. */
export function createEventStore(options: CreateEventStoreOptions): EventStore {
  if (options.databaseUrl) {
    return new PostgresEventStore({
      connectionString: options.databaseUrl,
      logger: options.logger,
      breaker: options.breaker,
    });
  }
  return new PgliteEventStore({ dataDir: options.dataDir });
}
