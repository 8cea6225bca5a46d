import { LAST_EVENT_ID_HEADER, STREAM_PATH, type ErrorCode } from '@infinitescribe/protocol';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { Authenticator, CredentialOptions } from '../services/auth/authenticator.js';
import type { EventBus } from '../adapters/bus/event-bus.js';
import type { RealtimeSettings } from '../core/settings.js';
import { newConnectionId } from '../core/connection-id.js';
import { AppError, ForbiddenTopicError } from '../core/errors.js';
import { formatEventId } from '../core/event-id.js';
import type { EventRecord } from '../core/event-record.js';
import type { Metrics } from '../adapters/observability/metrics.js';
import type { EventStore } from '../adapters/store/event-store.js';
import { canSubscribe, type Principal } from '../core/principal.js';
import { refreshParams, refreshResponse, streamHeaders, streamQuery } from './api-schemas.js';
import { AUTH_ERRORS, USER_AUTH, defineRoute, type RouteDefinition } from './route-definition.js';
import { SSEConnection, type ConnectionIdentity } from '../services/sse/connection.js';
import type { ConnectionManager } from '../services/sse/connection-manager.js';
import { controlFrame, retryFrame, type SharedFrame } from '../services/sse/frame.js';
import { ReplayFrames } from '../services/sse/replay-frames.js';
import { planReplay } from '../services/sse/replay.js';
import { resolveTopics } from '../services/sse/topic-access.js';

/** Everything the stream routes need. */
export interface StreamRouteServices {
  config: Readonly<RealtimeSettings>;
  instanceId: string;
  authenticator: Authenticator;
  connections: ConnectionManager;
  bus: EventBus;
  store: EventStore;
  metrics: Metrics;
  /** True once shutdown has begun: new streams are refused so clients go elsewhere. */
  isClosing: () => boolean;
}

/**
 * The SSE headers of docs/http-api.md. No `Connection` or `Transfer-Encoding` by hand (both are illegal in
 * HTTP/2); `no-transform` and `X-Accel-Buffering` stop proxies from compressing or buffering.
 */
const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
} as const;

/** What the stream's description says before its list of events (api-docs.ts appends that). */
const STREAM_DESCRIPTION = [
  'Credentials: `Authorization: Bearer <jwt>`, or `?ticket=` (EventSource), or the `access_token` cookie. ' +
    'Refusals (400, 401, 403, 429, 503) come before the stream starts, as JSON.',
  '',
  'Frames: `retry: <RETRY_MS>` first. Published events: `id: <id>`, `event: <type>`, `data: <envelope>` ' +
    '(`{topic, type, ts, payload}`, one line). Control events: `event: <type>`, `data: <object>`, no `id:` ' +
    'line, so they never move the resume point.',
  '',
  'Resume: send the last id seen as `Last-Event-ID` (browsers do on reconnect) or `lastEventId`. ' +
    'The stream replays what its topics got after it, then goes live, with no gap and no duplicate, and ' +
    'ends the replay with `stream.resumed`. An id older than the hot log gives `stream.reset {gap}` and the ' +
    'critical events still stored; an unknown id gives `stream.reset {unknown_id}`. Never a 4xx for a bad id.',
].join('\n');

/** A stream takes a one-time ticket too (EventSource cannot send a header). */
const STREAM_CREDENTIALS = { allowTicket: true } as const;

/** The refusal of a stream while this instance shuts down: its client goes to another one. */
function shuttingDown(): AppError {
  return new AppError('shutting_down', 'this instance is shutting down; reconnect');
}

/** The services, and what this instance's streams share: each replayed event's frame. */
type StreamServices = StreamRouteServices & { replayFrames: ReplayFrames };

/** `GET /api/sse/stream` (and its HEAD) and `POST /api/sse/connections/:connectionId/refresh`. */
export function streamRoutes(services: StreamRouteServices): RouteDefinition[] {
  const streamServices: StreamServices = { ...services, replayFrames: new ReplayFrames() };
  // Not async itself: the authenticator's promise is handed on, not wrapped in one more.
  const authenticateUnlessClosing = (request: FastifyRequest, options?: CredentialOptions) =>
    services.isClosing() ? Promise.reject(shuttingDown()) : services.authenticator.authenticate(request, options);
  const refusals: readonly ErrorCode[] = [
    ...AUTH_ERRORS,
    'invalid_request',
    'forbidden_topic',
    'too_many_connections',
    'bus_unavailable',
    'shutting_down',
  ];
  return [
    defineRoute({
      method: 'GET',
      url: STREAM_PATH,
      operationId: 'openStream',
      tag: 'stream',
      summary: 'Open the event stream (Server-Sent Events)',
      description: STREAM_DESCRIPTION,
      credentials: ['bearer', 'ticket', 'cookie'],
      authenticate: (request) => authenticateUnlessClosing(request, STREAM_CREDENTIALS),
      query: streamQuery,
      headers: streamHeaders,
      answers: {
        200: {
          description:
            'The stream: `retry:` first, then `connection.established`, the replay (when resuming) ' +
            'ending with `stream.resumed`, then live events. See `x-sse-events` for every frame.',
          contentType: 'text/event-stream',
        },
      },
      errors: refusals,
      // Fastify's automatic HEAD would run the stream handler, which writes the stream itself.
      options: { exposeHeadRoute: false },
      handler: ({ request, reply, principal, query }) =>
        openStream(streamServices, { request, reply, principal, query }),
    }),
    defineRoute({
      method: 'HEAD',
      url: STREAM_PATH,
      operationId: 'checkStream',
      tag: 'stream',
      summary: 'Whether a stream would open, without opening one',
      description: 'The same refusals as `GET`, or the SSE headers. Tickets are not taken: a HEAD must not use one up.',
      credentials: USER_AUTH,
      authenticate: (request) => authenticateUnlessClosing(request),
      query: streamQuery,
      answers: { 200: { description: 'A stream would open.', contentType: 'text/event-stream' } },
      errors: refusals.filter((code) => code !== 'too_many_connections'),
      handler: ({ reply, principal, query }) => {
        resolveTopics(principal, query.topics);
        return reply.code(200).headers(SSE_HEADERS).send();
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/api/sse/connections/:connectionId/refresh',
      operationId: 'refreshStream',
      tag: 'stream',
      summary: 'Extend a live stream with a fresh token',
      description:
        'After `auth.expiring`: a fresh Bearer token of the same user moves the stream’s expiry ' +
        'without reconnecting. The stream must be open on the instance that answers.',
      credentials: USER_AUTH,
      authenticate: (request) => services.authenticator.authenticate(request),
      params: refreshParams,
      answers: { 200: { description: 'The new expiry.', schema: refreshResponse } },
      errors: [...AUTH_ERRORS, 'forbidden', 'forbidden_topic', 'not_found'],
      handler: async ({ principal, params }) => {
        const connection = services.connections.get(params.connectionId);
        if (!connection) throw new AppError('not_found', 'no open stream with this id on this instance');
        if (connection.userId !== principal.userId) {
          throw new AppError('forbidden', 'the token belongs to another user than the stream');
        }
        const lost = connection.topics.find((topic) => !canSubscribe(principal, topic));
        if (lost !== undefined) throw new ForbiddenTopicError(lost);
        connection.setExpiry(principal.expiresAt, services.config.authExpiryWarningMs);
        return { connectionId: connection.id, expiresAt: new Date(connection.expiresAt).toISOString() };
      },
    }),
  ];
}

/** A stream request, authenticated and with its query checked. */
interface StreamRequest {
  request: FastifyRequest;
  reply: FastifyReply;
  principal: Principal;
  query: z.output<typeof streamQuery>;
}

/**
 * Opens a stream. A function, not an async one: a fresh stream on the in-process bus awaits
 * nothing, and an async function costs every call its promise and a copy of its registers (a
 * connect burst's garbage). The promise comes only with an await: a cluster lease, the head on
 * Redis, a resume.
 */
function openStream(services: StreamServices, stream: StreamRequest): void | Promise<void> {
  const { request, principal } = stream;
  const topics = resolveTopics(principal, stream.query.topics);
  const identity: ConnectionIdentity = { id: newConnectionId(), userId: principal.userId, ip: request.ip, topics };
  // Per-instance limits, then the user's streams across the cluster: a 429 is still a normal reply.
  // Only the cluster's count is awaited (one instance: no promise per stream opened).
  const admission = services.connections.admit(identity);
  if (typeof admission === 'function') return startStream(services, stream, identity, admission);
  return admission.then((release) => startStream(services, stream, identity, release));
}

/** An admitted stream: its headers, then its setup (at once on the in-process bus, else awaited). */
function startStream(
  services: StreamServices,
  stream: StreamRequest,
  identity: ConnectionIdentity,
  release: () => void,
): void | Promise<void> {
  const { config, connections, metrics } = services;
  const { request, reply } = stream;
  // The admission may have awaited Redis: the instance may have begun shutting down, or the client left.
  if (services.isClosing()) {
    release();
    throw shuttingDown();
  }
  if (request.raw.socket.destroyed) {
    release();
    reply.hijack();
    return;
  }

  // From here on the stream is ours: refusals are over, everything else travels in-band.
  reply.hijack();
  const response = reply.raw;
  // Headers set by hooks (CORS) live on the reply, which hijack bypasses: carry them over.
  const hookHeaders = reply.getHeaders();
  for (const name in hookHeaders) {
    const value = hookHeaders[name];
    if (value !== undefined) response.setHeader(name, value);
  }
  response.writeHead(200, SSE_HEADERS);
  // No TCP keep-alive: heartbeats keep the stream from ever being idle, so its probes would never
  // be sent, and turning it on costs four system calls per stream (a reconnect storm's setup).
  response.socket?.setNoDelay(true);
  // The stream outlives its request: its close is logged by the server's logger, so the request's
  // child logger is not kept alive for the stream's whole life.
  const serverLog = request.server.log;
  const connection = new SSEConnection(identity, response, {
    maxBufferedBytes: config.maxBufferedBytes,
    batcher: connections.batcher,
    onIslandNotice: () => metrics.streamResets.inc({ reason: 'gap' }),
    onClose: (closed, reason) => {
      connections.unregister(closed, reason);
      release();
      serverLog.debug({ connectionId: closed.id, reason }, 'stream closed');
    },
  });
  // A resume's headers and connection.established wait for its replay, to leave with it in one
  // write (SSEConnection.holdWrites); a fresh stream's go at once.
  const headerId = request.headers[LAST_EVENT_ID_HEADER];
  const lastEventId = typeof headerId === 'string' ? headerId : stream.query.lastEventId;
  if (lastEventId !== undefined) connection.holdWrites();
  // A fresh stream starts after the current head and says so: a client with no resume point yet
  // keeps that id. On the in-process bus the stream is subscribed at that head at once; elsewhere
  // it reads the head, subscribes, and catches up on whatever landed in between, so nothing
  // published after the connect is ever missed.
  const liveAt = lastEventId === undefined ? connections.registerAtHead(connection) : undefined;
  if (liveAt === undefined) return setUpStream(services, stream, connection, lastEventId);
  announce(services, stream, connection, liveAt);
  connection.skipThrough(liveAt);
  connection.goLive();
}

/**
 * The setup that awaits: a fresh stream off the in-process bus reads the head, subscribes and
 * catches up; a resume subscribes and replays. Failures travel in-band (the stream ends).
 */
async function setUpStream(
  services: StreamServices,
  stream: StreamRequest,
  connection: SSEConnection,
  lastEventId: string | undefined,
): Promise<void> {
  const log = stream.request.log;
  const startId = lastEventId === undefined ? await currentHead(services) : undefined;
  announce(services, stream, connection, startId);
  try {
    await services.connections.register(connection);
    if (lastEventId !== undefined) await resume(services, connection, { lastEventId, log });
    else if (startId !== undefined) await catchUp(services, connection, startId);
    // A resync the setup did not take up (a fresh stream has no resume to plan again) ends the
    // stream, as it ends a live one.
    if (connection.takeResync()) connection.close('resync');
    connection.goLive();
  } catch (error) {
    log.error({ err: error, connectionId: connection.id }, 'stream setup failed');
    services.metrics.errors.inc({ code: 'internal_error' });
    connection.close('replay_failed');
  } finally {
    connection.releaseWrites();
  }
}

/** `retry:` and `connection.established` (with the id a fresh stream starts after); the token's expiry from here on. */
function announce(
  services: StreamServices,
  { request, principal }: StreamRequest,
  connection: SSEConnection,
  startId: number | undefined,
): void {
  connection.write(
    retryFrame(services.config.retryMs) +
      // A key whose value is undefined is left out of the JSON (no lastEventId on a resume).
      controlFrame('connection.established', {
        connectionId: connection.id,
        instanceId: services.instanceId,
        // Only serialised here: the protocol's type is the client's, which owns what it parses.
        topics: connection.topics as string[],
        lastEventId: startId === undefined ? undefined : formatEventId(startId),
      }),
  );
  // Checked from here on by the connection manager's sweep (no timer per stream).
  connection.setExpiry(principal.expiresAt, services.config.authExpiryWarningMs);
  request.log.debug(
    { connectionId: connection.id, userId: principal.userId, topics: connection.topics },
    'stream opened',
  );
}

/** The head id, or undefined when the bus cannot tell (the stream then simply starts live). */
async function currentHead(services: StreamRouteServices): Promise<number | undefined> {
  try {
    return await services.bus.headId();
  } catch {
    return undefined;
  }
}

/**
 * Sends what was published on the stream's topics after `startId`, before going live. An event that
 * cannot be sent is skipped, and the stream told with `stream.reset {gap}`.
 */
async function catchUp(services: StreamServices, connection: SSEConnection, startId: number): Promise<void> {
  connection.skipThrough(startId);
  const read = await services.bus.read(connection.topics, startId, services.config.replayMaxEvents);
  // Nearly always nothing: skipping the replay machinery is a few hundred bytes less per connect.
  const { skipped } =
    read.events.length === 0 ? { skipped: 0 } : await sendAll(connection, read.events, services.replayFrames);
  if (skipped > 0 || (read.unreadable ?? 0) > 0) {
    connection.write(controlFrame('stream.reset', { reason: 'gap' }));
    services.metrics.streamResets.inc({ reason: 'gap' });
  }
}

/** Bytes of replayed frames written as one chunk (one socket write); under a socket buffer. */
const REPLAY_RUN_BYTES = 16 * 1024;

/**
 * Writes replayed events at the client's pace (a backlog larger than MAX_BUFFERED_BYTES streams
 * out instead of ending as a slow consumer), in runs of up to REPLAY_RUN_BYTES, each one write;
 * each event's frame is built once for every stream that replays it (ReplayFrames). One that
 * cannot be serialised (only a record from before payloads were checked can be one) is skipped
 * and counted, so it can never close the stream or stop the replay.
 */
async function sendAll(
  connection: SSEConnection,
  events: readonly EventRecord[],
  frames: ReplayFrames,
): Promise<{ sent: number; skipped: number }> {
  let sent = 0;
  let skipped = 0;
  let run: { record: EventRecord; frame: SharedFrame }[] = [];
  let runBytes = 0;
  for (const event of events) {
    if (connection.isClosed) break;
    const frame = frames.frameOf(event);
    if (frame === undefined) {
      skipped++;
      continue;
    }
    run.push({ record: event, frame });
    runBytes += frame.plain.length;
    if (runBytes >= REPLAY_RUN_BYTES) {
      sent += await connection.replayBatch(run);
      run = [];
      runBytes = 0;
    }
  }
  if (run.length > 0 && !connection.isClosed) sent += await connection.replayBatch(run);
  return { sent, skipped };
}

async function resume(
  services: StreamServices,
  connection: SSEConnection,
  resumeFrom: { lastEventId: string; log: FastifyBaseLogger },
): Promise<void> {
  let from = resumeFrom.lastEventId;
  let replayed = 0;
  let complete = true;
  // A resync during the replay (the bus lost events on a topic, e.g. at a Redis rejoin) plans it
  // again from where the client got to, which tells the loss in-band, rather than ending a stream
  // that has not even said stream.resumed yet (its client would come back at once for the same).
  for (let plans = 1; ; plans++) {
    const part = await replayPart(services, connection, from, resumeFrom.log);
    replayed += part.replayed;
    complete &&= part.complete;
    if (!connection.takeResync()) break;
    const point = connection.resumePoint;
    if (point === undefined || plans > MAX_REPLANS) {
      connection.close('resync');
      return;
    }
    from = formatEventId(point);
  }
  // An outage told in-band during the replay (events of other instances may be missing) is a loss too.
  connection.write(controlFrame('stream.resumed', { replayed, complete: complete && !connection.toldLossInReplay }));
}

/** Resyncs one resume takes up by planning again before it gives up and ends the stream. */
const MAX_REPLANS = 3;

/** Plans the replay from `lastEventId` and writes it (its reset first); the part of the resume it was. */
async function replayPart(
  services: StreamServices,
  connection: SSEConnection,
  lastEventId: string,
  log: FastifyBaseLogger,
): Promise<{ replayed: number; complete: boolean }> {
  const { metrics } = services;
  const plan = await planReplay(
    {
      bus: services.bus,
      store: services.store,
      maxEvents: services.config.replayMaxEvents,
      onStoreError: (error) => {
        metrics.errors.inc({ code: 'store_unavailable' });
        log.warn({ err: error, connectionId: connection.id }, 'store unreadable during replay; resuming without it');
      },
    },
    connection.topics,
    lastEventId,
  );
  // What the resume writes (headers, connection.established, reset, replay, stream.resumed, the
  // live events queued meanwhile) leaves in one write, released once the stream is live
  // (openStream). Held again here: a slow plan let the headers go (SSEConnection.endLongHold).
  connection.holdWrites();
  if (plan.reset) {
    connection.write(controlFrame('stream.reset', plan.reset));
    metrics.streamResets.inc({ reason: plan.reset.reason });
  }
  if (plan.after !== undefined) connection.skipThrough(plan.after);
  const { sent: replayed, skipped } = await sendAll(connection, plan.events, services.replayFrames);
  if (skipped > 0) log.warn({ connectionId: connection.id, skipped }, 'replay skipped events it cannot serialise');
  metrics.replayedEvents.inc(replayed);
  return { replayed, complete: plan.complete && skipped === 0 };
}
