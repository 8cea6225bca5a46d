/**
 * @module The optional native transport: a browser `EventSource`, which cannot send headers, so
 * each attempt first trades the Bearer token for a one-use ticket (`POST /api/sse/ticket`) and
 * passes the resume point as `?lastEventId=`. The native auto-reconnect is switched off by closing
 * on the first `error`: the ticket is spent, and the controller owns every retry anyway.
 */
import { SSEClientError } from '../errors.js';
import {
  buildUrl,
  failureFromResponse,
  isRecord,
  networkFailure,
  type Transport,
  type TransportHandlers,
  type TransportRequest,
} from '../transport.js';
import { CONTROL_EVENT_TYPES, isControlEventType, PUBLISHED_EVENT_TYPES, STREAM_PATH, TICKET_PATH } from '../wire.js';

/**
 * The part of a `MessageEvent` the transport reads.
 * @example source.addEventListener('heartbeat', (event: EventSourceMessageLike) => JSON.parse(String(event.data)));
 */
export interface EventSourceMessageLike {
  readonly data: unknown;
  readonly lastEventId: string;
}

/**
 * The part of the `EventSource` API the transport uses; the browser's class fits, as does a
 * polyfill or a test fake.
 * @example class FakeEventSource implements EventSourceLike { ... }
 */
export interface EventSourceLike {
  addEventListener(type: string, listener: (event: EventSourceMessageLike) => void): void;
  close(): void;
}

/**
 * A constructor of {@link EventSourceLike}. Default `globalThis.EventSource`.
 * @example createSSEClient({ url, getToken, transport: 'eventsource', EventSource: MyPolyfill })
 */
export type EventSourceConstructor = new (url: string) => EventSourceLike;

/**
 * Opens a native EventSource attempt with a fresh ticket. A native EventSource hands a named event
 * only to a listener of that name, so it listens to the control events, the built-in catalogue
 * and `appEventTypes` (the app's own types, `SSEClientOptions.eventTypes`).
 */
export function openEventSourceTransport(
  request: TransportRequest,
  handlers: TransportHandlers,
  EventSourceClass: EventSourceConstructor,
  appEventTypes: readonly string[] = [],
): Transport {
  const abort = new AbortController();
  let source: EventSourceLike | undefined;
  let isClosed = false;
  const stop = () => {
    isClosed = true;
    abort.abort();
    source?.close();
  };
  const end: TransportHandlers['onEnd'] = (result) => {
    if (isClosed) return;
    stop();
    handlers.onEnd(result);
  };

  void (async () => {
    let ticket: unknown;
    try {
      const response = await request.fetch(buildUrl(request.baseUrl, TICKET_PATH, {}), {
        method: 'POST',
        headers: { accept: 'application/json', authorization: `Bearer ${request.token}` },
        signal: abort.signal,
      });
      if (isClosed) return;
      if (!response.ok) return end(await failureFromResponse(response));
      const body: unknown = await response.json();
      ticket = isRecord(body) ? body['ticket'] : undefined;
    } catch (error) {
      return end(networkFailure(error));
    }
    if (isClosed) return;
    if (typeof ticket !== 'string' || ticket === '') {
      return end({ kind: 'failed', error: new SSEClientError('bad_response', 'ticket answer has no ticket') });
    }
    source = new EventSourceClass(
      buildUrl(request.baseUrl, STREAM_PATH, {
        ticket,
        topics: request.topics.join(','),
        lastEventId: request.lastEventId ?? undefined,
      }),
    );
    listen(source, [...CONTROL_EVENT_TYPES, ...new Set([...PUBLISHED_EVENT_TYPES, ...appEventTypes])], handlers, end);
  })();

  return { kind: 'eventsource', close: stop };
}

function listen(
  source: EventSourceLike,
  types: readonly string[],
  handlers: TransportHandlers,
  end: TransportHandlers['onEnd'],
): void {
  let isOpen = false;
  source.addEventListener('open', () => {
    isOpen = true;
  });
  source.addEventListener('error', () => {
    // A native EventSource hides the status, so a refusal and a lost network look alike. Before
    // `open` it is a failed attempt; after it, the stream ended (like a fetch stream's end).
    end(
      isOpen
        ? { kind: 'ended' }
        : { kind: 'failed', error: new SSEClientError('network_error', 'EventSource failed before it opened') },
    );
  });
  for (const type of types) {
    // `lastEventId` of a MessageEvent is the stream's last id so far, not this frame's: control
    // events carry none of their own, so theirs is dropped lest it look like a published event.
    const isControl = isControlEventType(type);
    source.addEventListener(type, (event) => {
      const data = typeof event.data === 'string' ? event.data : '';
      handlers.onMessage({
        event: type,
        data,
        id: isControl || event.lastEventId === '' ? undefined : event.lastEventId,
      });
    });
  }
}
