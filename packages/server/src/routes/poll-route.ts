import { POLL_PATH, type PollResponse } from '@infinitescribe/protocol';
import { randomUUID } from 'node:crypto';
import type { EventRecord } from '../core/event-record.js';
import { formatEventId } from '../core/event-id.js';
import { pollQuery, pollResponse } from './api-schemas.js';
import { AUTH_ERRORS, USER_AUTH, defineRoute, type RouteDefinition } from './route-definition.js';
import type { TopicSubscriber } from '../services/sse/connection-manager.js';
import { tryEnvelopeJson } from '../services/sse/frame.js';
import { planReplay, type ReplayPlan } from '../services/sse/replay.js';
import type { StreamRouteServices } from './sse-routes.js';
import { resolveTopics } from '../services/sse/topic-access.js';

/** After the first live event, wait this long for more so a burst comes back in one answer. */
const BATCH_WINDOW_MS = 10;

/** Collects live events for one waiting poll. */
class PollWaiter implements TopicSubscriber {
  readonly events: EventRecord[] = [];
  private wake: (() => void) | undefined;

  deliver(record: EventRecord): boolean {
    this.events.push(record);
    this.wake?.();
    return true;
  }

  /** Resolves once an event has arrived (plus a short batching window) or after `timeoutMs`. */
  wait(timeoutMs: number, abort: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timeout);
        abort.removeEventListener('abort', finish);
        resolve();
      };
      const timeout = setTimeout(finish, timeoutMs);
      abort.addEventListener('abort', finish);
      if (this.events.length > 0) return void setTimeout(finish, 0);
      this.wake = () => {
        this.wake = undefined;
        setTimeout(finish, BATCH_WINDOW_MS);
      };
    });
  }
}

/**
 * `GET /api/sse/poll`: the long-poll fallback for networks that buffer streams. Same topics, ids
 * and reset rules as the stream: an answer holds what the replay of `after` gives, or else waits
 * for the next live events.
 */
export function pollRoutes(services: StreamRouteServices): RouteDefinition[] {
  const poll = defineRoute({
    method: 'GET',
    url: POLL_PATH,
    operationId: 'poll',
    tag: 'stream',
    summary: 'Long-poll fallback',
    description:
      'For networks that buffer streams: same topics, ids and reset rules as the stream. Answers ' +
      'at once with what `after` missed, else waits up to `timeoutMs` for the next events.',
    credentials: USER_AUTH,
    authenticate: (request) => services.authenticator.authenticate(request),
    query: pollQuery,
    answers: {
      200: { description: 'Events after `after`.', schema: pollResponse, jsonSchemaRef: 'PollResponse' },
    },
    errors: [...AUTH_ERRORS, 'invalid_request', 'forbidden_topic', 'too_many_connections'],
    handler: async ({ request, reply, principal, query }) => {
      const topics = resolveTopics(principal, query.topics);
      // Without `after`, the poll starts at the current head, read before subscribing: anything
      // published between the two is then found by the replay below instead of being skipped.
      const after = query.after ?? formatEventId(await services.bus.headId());
      // A waiting poll holds a connection and subscriptions like a stream: it counts against the
      // same per-user and per-address limits (429 past them).
      const release = await services.connections.admit({
        userId: principal.userId,
        ip: request.ip,
        id: randomUUID(),
      });
      const waiter = new PollWaiter();
      const abort = new AbortController();
      request.raw.once('close', () => abort.abort());
      try {
        // Subscribed before the hot log is read: an event published meanwhile is in one or the other.
        await services.connections.subscribe(topics, waiter);
        const plan: ReplayPlan = await planReplay(
          {
            bus: services.bus,
            store: services.store,
            maxEvents: services.config.replayMaxEvents,
            onStoreError: (error) => request.log.warn({ err: error }, 'store unreadable during poll replay'),
          },
          topics,
          after,
        );
        if (plan.reset) services.metrics.streamResets.inc({ reason: plan.reset.reason });
        const cursor = plan.after ?? (await services.bus.headId());
        const replayed = plan.events;
        if (replayed.length === 0 && !plan.reset) await waiter.wait(query.timeoutMs, abort.signal);
        const lastReplayed = replayed.at(-1)?.id ?? cursor;
        const events = replayed.concat(waiter.events.filter((event) => event.id > Math.max(lastReplayed, cursor)));
        services.metrics.replayedEvents.inc(replayed.length);
        const lastId = events.at(-1)?.id ?? cursor;
        // Each event serialised on its own: one that cannot be (a record from before payloads were
        // checked) is left out and the answer says something was lost, instead of failing the poll.
        const items: string[] = [];
        for (const event of events) {
          const json = tryEnvelopeJson(event);
          if (json !== undefined) items.push(`{"id":${JSON.stringify(formatEventId(event.id))},${json.slice(1)}`);
        }
        let reset = plan.reset;
        // An event published on this instance alone while it lost Redis: the cursor passes over
        // events of other instances this poller will not get (as streams are told, see SSEConnection).
        const island = events.find((event) => event.island !== undefined)?.island;
        if (!reset && island !== undefined) reset = { reason: 'gap', since: formatEventId(island) };
        if (!reset && (items.length < events.length || !plan.complete)) reset = { reason: 'gap' };
        if (reset && !plan.reset) services.metrics.streamResets.inc({ reason: reset.reason });
        const tail: Omit<PollResponse, 'events'> = { lastEventId: formatEventId(lastId), ...(reset ? { reset } : {}) };
        return reply
          .type('application/json; charset=utf-8')
          .send(`{"events":[${items.join(',')}],${JSON.stringify(tail).slice(1)}`);
      } finally {
        services.connections.unsubscribe(topics, waiter);
        release();
      }
    },
  });
  return [poll];
}
