import type { HistogramData } from './histogram.js';

/** Commands the orchestrator (run.ts) sends to a load generator over IPC. */
export type LoadCommand =
  | { type: 'ping'; id: number }
  | {
      type: 'init';
      id: number;
      baseUrl: string;
      streamPath: string;
      /** A stream counts as established at its 200 head (a server that sends no first frame: Nchan). */
      establishedOnHead?: boolean;
      secret: string;
      /** This generator's number in its pool: user ids are `u<generator>-<n>`, a new one (and a new token) for every stream opened. */
      generator: number;
      /** This process's clock minus the orchestrator's (ms): subtracted from receive times. */
      clockOffsetMs: number;
    }
  | { type: 'open'; id: number; count: number; ratePerSec: number; timeoutMs: number }
  | { type: 'reset'; id: number }
  | { type: 'stats'; id: number }
  | { type: 'closeAll'; id: number };

/** What a load generator reports about its streams since the last reset. */
export interface LoadStats {
  /** Streams established and not ended. */
  open: number;
  /** `notification` frames received on all streams. */
  received: number;
  /** Fewest / most notifications received by one open stream. */
  minPerStream: number;
  maxPerStream: number;
  /** Streams that ended without us closing them (server close, reset, error). */
  disconnects: number;
  /** Notifications whose id was not above the previous one on their stream: duplicates or out of order. */
  orderErrors: number;
  /** Delivery latency: receive time − the send time the publisher put in the title. */
  latency: HistogramData;
  /** Orchestrator-clock time of the last notification received (0 if none). */
  lastReceivedAt: number;
  /** CPU time (user + system) this process used since the reset, ms. */
  cpuMs: number;
}

/** Result of an `open` command. */
export interface OpenResult {
  established: number;
  failed: number;
  /** Failure reasons (`http_429`, `ECONNRESET`, `timeout`, ...) and their counts. */
  failures: Record<string, number>;
  /** Request sent → `connection.established` frame received. */
  connect: HistogramData;
  elapsedMs: number;
}

/** Replies of a load generator; `id` echoes the command's. */
export type LoadReply =
  | { type: 'pong'; id: number; now: number }
  | { type: 'ready'; id: number; signMs: number }
  | { type: 'opened'; id: number; result: OpenResult }
  | { type: 'reset'; id: number }
  | { type: 'stats'; id: number; stats: LoadStats }
  | { type: 'closed'; id: number; closed: number }
  | { type: 'error'; id: number; message: string };
