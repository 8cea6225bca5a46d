import type { EnvelopeWithId } from '@infinitescribe/protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SSEClientError } from './errors.js';
import type { SSEClient } from './sse-client.js';
import { frames } from './testing/fake-network.js';
import { MemoryStorage } from './testing/fakes.js';
import { advance, createHarness, settle } from './testing/harness.js';
import { STREAM_PATH } from './wire.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('connection states', () => {
  it('goes connecting → open → reconnecting → open, with reasons', async () => {
    const { client, network, transitions, openStream, snapshot } = createHarness();
    expect(snapshot()).toMatchObject({ state: 'connecting', reason: 'connect_called', attempt: 0 });
    const stream = await openStream('c1');
    expect(snapshot()).toMatchObject({ state: 'open', reason: 'connected', connectionId: 'c1', transport: 'fetch' });

    stream.end();
    await settle();
    // retry: 1000 is the floor and the base: attempt 0 waits 1000 + 0.5 × 1000.
    expect(snapshot()).toMatchObject({
      state: 'reconnecting',
      reason: 'transport_closed',
      attempt: 1,
      retryInMs: 1500,
    });
    expect(snapshot().connectionId).toBeUndefined();
    expect(network.to(STREAM_PATH)).toHaveLength(1);

    await advance(1499);
    expect(network.to(STREAM_PATH)).toHaveLength(1);
    await advance(1);
    expect(network.to(STREAM_PATH)).toHaveLength(2);
    expect(snapshot().retryInMs).toBeUndefined();

    await openStream('c2');
    expect(snapshot()).toMatchObject({ state: 'open', reason: 'reconnected', connectionId: 'c2' });
    expect(transitions).toEqual([
      'connecting:connect_called',
      'open:connected',
      'reconnecting:transport_closed',
      'open:reconnected',
    ]);
    client.close();
    expect(snapshot()).toMatchObject({ state: 'closed', reason: 'client_closed' });
  });

  it('sends the token and the resume id on every attempt', async () => {
    const { network, openStream, getToken } = createHarness({ topics: ['user:u1', 'doc:42'] });
    const stream = await openStream();
    const first = network.last(STREAM_PATH);
    expect(first.request.headers['authorization']).toBe('Bearer token');
    expect(first.request.headers['last-event-id']).toBeUndefined();
    expect(first.url.searchParams.get('topics')).toBe('user:u1,doc:42');
    stream.push(frames.notification('7'));
    stream.fail();
    await advance(2000);
    const second = network.last(STREAM_PATH);
    expect(second).not.toBe(first);
    expect(second.request.headers['last-event-id']).toBe('7');
    expect(getToken).toHaveBeenCalledTimes(2);
    expect(getToken).toHaveBeenLastCalledWith({ forceRefresh: false });
  });

  it('keeps the snapshot object stable until something changes', async () => {
    const { client, openStream } = createHarness();
    const stream = await openStream();
    const before = client.getSnapshot();
    stream.push(frames.heartbeat());
    await settle();
    expect(client.getSnapshot()).toBe(before);
    stream.push(frames.notification('1'));
    await settle();
    expect(client.getSnapshot()).not.toBe(before);
    expect(client.getSnapshot().lastEventId).toBe('1');
  });

  it('goes offline and back online, keeping the resume id', async () => {
    const { network, signals, openStream, transitions, snapshot } = createHarness();
    const stream = await openStream();
    stream.push(frames.notification('5'));
    await settle();
    signals.fire('offline');
    await settle();
    expect(snapshot()).toMatchObject({ state: 'offline', reason: 'browser_offline', lastEventId: '5' });
    expect(network.last(STREAM_PATH).isAborted).toBe(true);
    await advance(120_000);
    expect(network.to(STREAM_PATH)).toHaveLength(1);

    signals.fire('online');
    await settle();
    expect(snapshot()).toMatchObject({ state: 'reconnecting', reason: 'online' });
    expect(network.to(STREAM_PATH)).toHaveLength(2);
    expect(network.last(STREAM_PATH).request.headers['last-event-id']).toBe('5');
    await openStream();
    expect(transitions).toEqual([
      'connecting:connect_called',
      'open:connected',
      'offline:browser_offline',
      'reconnecting:online',
      'open:reconnected',
    ]);
  });

  it('retries at once when the network returns during a network-error wait', async () => {
    const { network, signals, snapshot } = createHarness({ backoff: { baseMs: 20_000 } });
    await settle();
    network.last(STREAM_PATH).fail();
    await settle();
    expect(snapshot()).toMatchObject({ state: 'reconnecting', reason: 'network_error', retryInMs: 10_000 });
    signals.fire('online');
    await settle();
    expect(network.to(STREAM_PATH)).toHaveLength(2);
  });

  it('starts offline when the browser is offline', async () => {
    const { client, signals, network, transitions } = createHarness({ autoConnect: false });
    signals.online = false;
    client.connect();
    await settle();
    expect(transitions).toEqual(['closed:not_started', 'connecting:connect_called', 'offline:browser_offline']);
    expect(network.requests).toHaveLength(0);
  });

  it('close() stops everything and connect() starts again', async () => {
    const { client, network, signals, openStream, snapshot } = createHarness();
    await openStream();
    client.close();
    expect(network.last(STREAM_PATH).isAborted).toBe(true);
    expect(signals.listenerCount).toBe(0);
    await advance(60_000);
    expect(network.to(STREAM_PATH)).toHaveLength(1);
    client.connect();
    expect(snapshot()).toMatchObject({ state: 'connecting', reason: 'connect_called' });
    await openStream();
    expect(snapshot()).toMatchObject({ state: 'open', reason: 'connected' });
    client.connect(); // no-op while open
    expect(network.to(STREAM_PATH)).toHaveLength(2);
  });

  it('close() during a pending getToken sends nothing', async () => {
    let resolveToken: (token: string) => void = () => undefined;
    const { client, network, getToken, snapshot } = createHarness({ autoConnect: false });
    getToken.mockImplementationOnce(() => new Promise((resolve) => (resolveToken = resolve)));
    client.connect();
    await settle();
    client.close();
    resolveToken('late-token');
    await settle();
    expect(network.requests).toHaveLength(0);
    expect(snapshot()).toMatchObject({ state: 'closed', reason: 'client_closed' });
  });

  it('reconnect() drops a live stream and connects at once', async () => {
    const { client, network, openStream, snapshot } = createHarness();
    await openStream();
    client.reconnect();
    expect(snapshot()).toMatchObject({ state: 'connecting', reason: 'reconnect_called' });
    await settle();
    expect(network.to(STREAM_PATH)).toHaveLength(2);
    expect(network.to(STREAM_PATH)[0]?.isAborted).toBe(true);
  });
});

describe('events', () => {
  it('delivers typed envelopes with their id, once each, in order', async () => {
    const { client, openStream } = createHarness();
    const titles: string[] = [];
    const all: EnvelopeWithId[] = [];
    client.on('notification', (event) => {
      // Compile-time: the payload is narrowed to the notification schema.
      const level: 'info' | 'success' | 'warning' | 'error' = event.payload.level;
      titles.push(`${event.id}:${event.payload.title}:${level}`);
    });
    client.on('*', (event) => all.push(event));
    const stream = await openStream();
    stream.push(frames.notification('1', 'a') + frames.notification('2', 'b'));
    stream.push(
      frames.event('3', 'task.progress', { taskId: 't', stage: 's', stageIndex: 0, stageCount: 1, percent: 5 }),
    );
    await settle();
    expect(titles).toEqual(['1:a:info', '2:b:info']);
    expect(all.map((event) => `${event.id}:${event.type}`)).toEqual([
      '1:notification',
      '2:notification',
      '3:task.progress',
    ]);
    expect(all[2]).toMatchObject({ topic: 'user:u1', ts: new Date(0).toISOString() });
  });

  it('stops calling a handler once unsubscribed', async () => {
    const { client, openStream } = createHarness();
    const ids: string[] = [];
    const off = client.on('notification', (event) => ids.push(event.id));
    const stream = await openStream();
    stream.push(frames.notification('1'));
    await settle();
    off();
    stream.push(frames.notification('2'));
    await settle();
    expect(ids).toEqual(['1']);
  });

  it('drops a replayed id after a reconnect (dedupe)', async () => {
    const { client, openStream } = createHarness();
    const ids: string[] = [];
    client.on('*', (event) => ids.push(event.id));
    const first = await openStream();
    first.push(frames.notification('a1') + frames.notification('a2'));
    first.fail();
    await advance(2000);
    const second = await openStream('c2');
    // A server that replays one too many (or a poll and a stream overlapping) must not double it.
    second.push(frames.notification('a2') + frames.notification('a3') + frames.notification('a3'));
    await settle();
    expect(ids).toEqual(['a1', 'a2', 'a3']);
  });

  it('persists the resume id and resumes from it after a reload', async () => {
    const storage = new MemoryStorage();
    const before = createHarness({ storage, topics: ['user:u1'] });
    const stream = await before.openStream();
    stream.push(frames.notification('41') + frames.notification('42'));
    await settle();
    before.client.close(); // the page unloads

    const after = createHarness({ storage, topics: ['user:u1'] });
    expect(after.snapshot().lastEventId).toBe('42');
    await settle();
    expect(after.network.last(STREAM_PATH).request.headers['last-event-id']).toBe('42');
  });

  it('takes the id a first stream starts after as its resume point, so a first outage loses nothing', async () => {
    const storage = new MemoryStorage();
    const first = createHarness({ storage, topics: ['user:u1'] });
    await settle();
    const established = `event: connection.established\ndata: ${JSON.stringify({ connectionId: 'c1', instanceId: 'i1', topics: ['user:u1'], lastEventId: '100' })}\n\n`;
    const stream = first.network.last(STREAM_PATH).respondStream();
    stream.push(frames.retry(1000) + established);
    await settle();
    expect(first.snapshot().lastEventId).toBe('100');
    stream.fail();
    await advance(2000);
    expect(first.network.last(STREAM_PATH).request.headers['last-event-id']).toBe('100');
    first.client.close();

    // A client that already has a resume point keeps its own.
    const later = createHarness({ storage, topics: ['user:u1'] });
    await settle();
    later.network
      .last(STREAM_PATH)
      .respondStream()
      .push(frames.retry(1000) + established.replace('100', '999'));
    await settle();
    expect(later.snapshot().lastEventId).toBe('100');
  });

  it('keeps resume points of different topic sets apart', async () => {
    const storage = new MemoryStorage();
    const docs = createHarness({ storage, topics: ['doc:1'] });
    (await docs.openStream()).push(frames.notification('9'));
    await settle();
    const other = createHarness({ storage, topics: ['doc:2'] });
    expect(other.snapshot().lastEventId).toBeNull();
  });

  it('surfaces stream.reset and stream.resumed, clearing nothing', async () => {
    const { client, openStream, storage, snapshot } = createHarness();
    const resets: unknown[] = [];
    const resumed: unknown[] = [];
    const ids: string[] = [];
    client.on('reset', (reset) => resets.push(reset));
    client.on('resumed', (info) => resumed.push(info));
    client.on('*', (event) => ids.push(event.id));
    const stream = await openStream();
    stream.push(frames.notification('10'));
    stream.push(frames.control('stream.reset', { reason: 'gap', since: '20' }));
    stream.push(frames.notification('21') + frames.notification('10'));
    stream.push(frames.control('stream.resumed', { replayed: 1, complete: false }));
    await settle();
    expect(resets).toEqual([{ reason: 'gap', since: '20' }]);
    expect(resumed).toEqual([{ replayed: 1, complete: false }]);
    // The dedupe window and the handlers survive the reset; the stream stays open.
    expect(ids).toEqual(['10', '21']);
    expect(snapshot()).toMatchObject({ state: 'open', lastEventId: '21' });
    expect([...storage.items.values()]).toEqual(['21']);

    stream.push(frames.control('stream.reset', { reason: 'unknown_id' }));
    await settle();
    expect(resets).toEqual([{ reason: 'gap', since: '20' }, { reason: 'unknown_id' }]);
    // A bad resume id is kept, not cleared: resuming from nothing would lose events silently,
    // while the same id again gives another reset, and the app refetches.
    expect(snapshot().lastEventId).toBe('21');
  });

  it('reports malformed data and handler errors without stopping the stream', async () => {
    const { client, openStream, snapshot } = createHarness();
    const errors: SSEClientError[] = [];
    const titles: string[] = [];
    client.on('error', (error) => errors.push(error));
    client.on('notification', () => {
      throw new Error('app bug');
    });
    client.on('notification', (event) => titles.push(event.payload.title));
    const stream = await openStream();
    stream.push('id: 1\nevent: notification\ndata: {not json\n\n');
    stream.push(frames.notification('2', 'ok'));
    stream.push(frames.control('stream.reset', { reason: 'nonsense' }));
    await settle();
    expect(errors.map((error) => error.code)).toEqual(['invalid_event', 'handler_error', 'invalid_event']);
    expect(titles).toEqual(['ok']);
    expect(snapshot()).toMatchObject({ state: 'open', lastEventId: '2' });
  });

  it("delivers the app's own event types (registered on the server) to their handlers and to '*'", async () => {
    type AppEvents = { 'comment.added': { docId: string; text: string } };
    const { client, openStream, snapshot } = createHarness();
    const typed = client as unknown as SSEClient<AppEvents>;
    const comments: string[] = [];
    const all: string[] = [];
    typed.on('comment.added', (event) => comments.push(`${event.id}:${event.topic}:${event.payload.text}`));
    typed.on('*', (event) => all.push(event.type));
    const stream = await openStream();
    stream.push(frames.event('5', 'comment.added', { docId: '42', text: 'hi' }, 'doc:42'));
    stream.push(frames.notification('6'));
    await settle();
    expect(comments).toEqual(['5:doc:42:hi']);
    expect(all).toEqual(['comment.added', 'notification']);
    expect(snapshot().lastEventId).toBe('6');
  });
});

describe('liveness watchdog', () => {
  it('reconnects after 2.5 × the heartbeat interval of silence', async () => {
    const { openStream, snapshot, network } = createHarness({ heartbeatMs: 1000 });
    const stream = await openStream();
    await advance(2400);
    stream.push(frames.heartbeat());
    await advance(2400);
    expect(snapshot().state).toBe('open');
    await advance(100);
    expect(snapshot()).toMatchObject({ state: 'reconnecting', reason: 'heartbeat_timeout' });
    expect(snapshot().error?.code).toBe('heartbeat_timeout');
    expect(network.to(STREAM_PATH)[0]?.isAborted).toBe(true);
  });

  it('learns the interval from the gaps between heartbeats', async () => {
    const { openStream, snapshot } = createHarness(); // assumes 15 s until it has seen heartbeats
    const stream = await openStream();
    for (let beat = 0; beat < 4; beat++) {
      stream.push(frames.heartbeat());
      await advance(2000);
    }
    stream.push(frames.heartbeat());
    await advance(4900); // 2.5 × the learned 2000 ms = 5000
    expect(snapshot().state).toBe('open');
    await advance(100);
    expect(snapshot()).toMatchObject({ state: 'reconnecting', reason: 'heartbeat_timeout' });
  });

  it('resets the failure streak once a heartbeat proves the stream stable', async () => {
    const { openStream, snapshot } = createHarness();
    (await openStream()).fail();
    await advance(2000);
    (await openStream()).fail();
    await advance(5000);
    const stream = await openStream();
    expect(snapshot()).toMatchObject({ state: 'open', attempt: 2 });
    stream.push(frames.heartbeat());
    await settle();
    expect(snapshot().attempt).toBe(0);
  });

  it('checks liveness at once when the page becomes visible again', async () => {
    const { openStream, signals, snapshot } = createHarness({ heartbeatMs: 1000 });
    await openStream();
    // Simulate a throttled background tab: the clock moves but the timer has not fired yet.
    vi.setSystemTime(Date.now() + 10_000);
    signals.fire('visible');
    await settle();
    expect(snapshot()).toMatchObject({ state: 'reconnecting', reason: 'heartbeat_timeout' });
  });

  it('cuts a network-error wait short when the page becomes visible, never re-sending anything but the GET', async () => {
    const { network, signals, snapshot } = createHarness({ backoff: { baseMs: 20_000 } });
    await settle();
    network.last(STREAM_PATH).fail();
    await settle();
    expect(snapshot()).toMatchObject({ state: 'reconnecting', reason: 'network_error', retryInMs: 10_000 });
    signals.fire('hidden');
    signals.fire('visible');
    await settle();
    expect(network.to(STREAM_PATH)).toHaveLength(2);
    expect(network.requests.every((pending) => pending.request.method === 'GET')).toBe(true);
  });
});
