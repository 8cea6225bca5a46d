import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SSEClient, SSEClientOptions } from '../sse-client.js';
import type { EventSourceConstructor } from './event-source-transport.js';
import { FakeEventSource } from '../testing/fakes.js';
import { advance, createHarness, settle, type Harness } from '../testing/harness.js';
import { CONTROL_EVENT_TYPES, PUBLISHED_EVENT_TYPES, TICKET_PATH } from '../wire.js';

beforeEach(() => {
  vi.useFakeTimers();
  FakeEventSource.instances.length = 0;
});
afterEach(() => {
  vi.useRealTimers();
});

function eventSourceHarness(options: Partial<SSEClientOptions> = {}): Harness {
  const harness = createHarness({
    transport: 'eventsource',
    EventSource: FakeEventSource,
    topics: ['user:u1'],
    ...options,
  });
  harness.network.onRequest = (pending) => {
    if (pending.url.pathname === TICKET_PATH)
      pending.respondJson(200, { ticket: `t${harness.network.to(TICKET_PATH).length}`, expiresIn: 30 });
  };
  return harness;
}

function lastSource(): FakeEventSource {
  const source = FakeEventSource.instances.at(-1);
  if (!source) throw new Error('no EventSource was created');
  return source;
}

describe('EventSource transport', () => {
  it('accepts the browser EventSource class (type check)', () => {
    const accepts = (ctor: EventSourceConstructor) => ctor;
    // Compile-time: the DOM's EventSource fits the port; Node has none at run time.
    const native = (globalThis as { EventSource?: typeof EventSource }).EventSource;
    if (native) expect(accepts(native)).toBe(native);
  });

  it('trades the Bearer token for a ticket and opens with ticket, topics and lastEventId', async () => {
    const { network, snapshot, client, storage } = eventSourceHarness();
    storage.setItem('unused', 'x');
    await settle();
    const ticketRequest = network.last(TICKET_PATH);
    expect(ticketRequest.request.method).toBe('POST');
    expect(ticketRequest.request.headers['authorization']).toBe('Bearer token');
    const source = lastSource();
    expect(source.url.searchParams.get('ticket')).toBe('t1');
    expect(source.url.searchParams.get('topics')).toBe('user:u1');
    expect(source.url.searchParams.get('lastEventId')).toBeNull();
    expect(source.listenedTypes).toEqual(expect.arrayContaining([...CONTROL_EVENT_TYPES, ...PUBLISHED_EVENT_TYPES]));

    const titles: string[] = [];
    client.on('notification', (event) => titles.push(`${event.id}:${event.payload.title}`));
    source.open();
    source.message('connection.established', { connectionId: 'es1', instanceId: 'i', topics: ['user:u1'] });
    source.message(
      'notification',
      { topic: 'user:u1', type: 'notification', ts: '', payload: { title: 'hi', level: 'info' } },
      '17',
    );
    // A control event after an event: the browser reports the stream's last id ('17') on it too.
    source.message('heartbeat', { ts: '' }, '17');
    await settle();
    expect(snapshot()).toMatchObject({
      state: 'open',
      transport: 'eventsource',
      connectionId: 'es1',
      lastEventId: '17',
    });
    expect(titles).toEqual(['17:hi']);
  });

  it("listens to the app's own event types named in `eventTypes` (a native EventSource needs each name)", async () => {
    const { client } = eventSourceHarness({ eventTypes: ['comment.added'] });
    await settle();
    const source = lastSource();
    expect(source.listenedTypes).toContain('comment.added');
    expect(source.listenedTypes.filter((type) => type === 'notification')).toHaveLength(1);
    const typed = client as unknown as SSEClient<{ 'comment.added': { docId: string; text: string } }>;
    const texts: string[] = [];
    typed.on('comment.added', (event) => texts.push(event.payload.text));
    source.open();
    source.message('connection.established', { connectionId: 'es1', instanceId: 'i', topics: ['doc:42'] });
    source.message(
      'comment.added',
      { topic: 'doc:42', type: 'comment.added', ts: '', payload: { docId: '42', text: 'hi' } },
      '3',
    );
    await settle();
    expect(texts).toEqual(['hi']);
  });

  it('closes on error (no native retry) and reconnects with a new ticket and the resume id', async () => {
    const { network, snapshot } = eventSourceHarness();
    await settle();
    const first = lastSource();
    first.open();
    first.message('connection.established', { connectionId: 'es1', instanceId: 'i', topics: [] });
    first.message(
      'notification',
      { topic: 'user:u1', type: 'notification', ts: '', payload: { title: 'a', level: 'info' } },
      '5',
    );
    first.error();
    await settle();
    expect(first.isClosed).toBe(true);
    expect(snapshot()).toMatchObject({ state: 'reconnecting', reason: 'transport_closed' });
    await advance(snapshot().retryInMs ?? 0);
    expect(network.to(TICKET_PATH)).toHaveLength(2);
    const second = lastSource();
    expect(second).not.toBe(first);
    expect(second.url.searchParams.get('ticket')).toBe('t2');
    expect(second.url.searchParams.get('lastEventId')).toBe('5');

    second.error(); // refused before opening (a browser hides the status)
    await settle();
    expect(snapshot()).toMatchObject({ state: 'reconnecting', reason: 'network_error' });
  });

  it('applies the 401 policy to the ticket request', async () => {
    const harness = createHarness({ transport: 'eventsource', EventSource: FakeEventSource });
    const { network, getToken, snapshot } = harness;
    network.onRequest = (pending) => pending.respondError(401, 'unauthorized');
    await settle();
    expect(getToken.mock.calls).toEqual([[{ forceRefresh: false }], [{ forceRefresh: true }]]);
    expect(snapshot()).toMatchObject({ state: 'closed', reason: 'unauthorized' });
    expect(FakeEventSource.instances).toHaveLength(0);
  });

  it('stalls into the same first-byte timeout as fetch', async () => {
    const { snapshot } = eventSourceHarness();
    await settle();
    lastSource().open();
    await advance(10_000);
    expect(snapshot()).toMatchObject({ state: 'reconnecting', reason: 'first_byte_timeout' });
    expect(lastSource().isClosed).toBe(true);
  });

  it('requires an EventSource class for transport "eventsource"', () => {
    expect(() => createHarness({ transport: 'eventsource' })).toThrow(/needs an EventSource class/);
  });
});
