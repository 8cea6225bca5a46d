/**
 * What the plugin cannot set itself, because Fastify takes it when the server is created: how
 * long a request may take to arrive, which proxies to believe, and framework-level errors in the
 * API's shape. The standalone host uses it; a team's own backend may spread it into `Fastify()`.
 */
import type { FastifyHttpOptions } from 'fastify';
import type { Server } from 'node:http';
import { clientErrorHandler, frameworkErrorHandler, type ErrorCounter } from '../routes/error-handler.js';

/** Options of {@link realtimeServerOptions}. */
export interface RealtimeServerOptions {
  /**
   * Which X-Forwarded-For hops to believe: false (none), how many proxies stand in front, or their
   * addresses and CIDRs. Never `true`: any client writes that header itself.
   */
  trustProxy?: false | number | string[];
  /** A request whose headers and body have not all arrived after this is answered 408. Default 30,000. */
  requestTimeoutMs?: number;
  /** Counts framework-level errors, e.g. `(code) => app.realtime.internals.metrics.errors.inc({ code })`. */
  countError?: ErrorCounter;
}

/**
 * Options for `Fastify()` that fit the realtime routes: request time-outs that never cut a stream
 * (a stream's request is complete at once), proxy trust, and every framework-level error (bad
 * framing, bad URL, 408, 414, 431) in `{"error": {"code", "message"}}`.
 * @example const app = Fastify({ logger: true, ...realtimeServerOptions({ trustProxy: 1 }) });
 */
export function realtimeServerOptions(options: RealtimeServerOptions = {}): FastifyHttpOptions<Server> {
  const { trustProxy = false, requestTimeoutMs = 30_000, countError } = options;
  return {
    // The plugin opens its store and runs migrations while it registers: on a busy machine that
    // can outlast Fastify's default of 10 s for a plugin to start.
    pluginTimeout: 120_000,
    // A hop count trusts that many hops from the socket inwards (Fastify refuses plain numbers).
    trustProxy: typeof trustProxy === 'number' ? (_address: string, hop: number) => hop < trustProxy : trustProxy,
    // Fastify's own 503 while closing has its body, not the API's: the plugin's onRequest hook answers.
    return503OnClosing: false,
    // Node checks pending requests every connectionsCheckingInterval, so the timeout is that precise.
    requestTimeout: requestTimeoutMs,
    http: {
      headersTimeout: Math.min(60_000, requestTimeoutMs),
      connectionsCheckingInterval: Math.min(30_000, Math.max(250, requestTimeoutMs / 4)),
    },
    clientErrorHandler: clientErrorHandler(countError),
    frameworkErrors: frameworkErrorHandler(countError),
  };
}
