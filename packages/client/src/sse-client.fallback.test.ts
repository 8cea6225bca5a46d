import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { frames, type PendingRequest } from './testing/fake-network.js';
import { advance, createHarness, settle, type Harness } from './testing/harness.js';
import { POLL_PATH, STREAM_PATH } from './wire.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const poll = (events: { id: string; title: string }[], lastEventId: string | null, reset?: object) => ({
  events: events.map(({ id, title }) => ({
    id,
    topic: 'user:u1',
    type: 'notification',
    ts: new Date(0).toISOString(),
    payload: { title, level: 'info' },
  })),
  lastEventId,
  ...(reset ? { reset } : {}),
});

/** Three stream attempts stall like behind a buffering proxy: headers, or not even that, then nothing. */
async function stallIntoFallback(harness: Harness): Promise<void> {
  const { network } = harness;
  await settle();
  network.last(STREAM_PATH).respondStream(); // 200 and headers, but the proxy holds every byte
  await advance(10_000);
  expect(harness.snapshot()).toMatchObject({ state: 'reconnecting', reason: 'first_byte_timeout', attempt: 1 });
  await advance(harness.snapshot().retryInMs ?? 0);
  await advance(10_000); // the second attempt gets no answer at all
  expect(harness.snapshot()).toMatchObject({ state: 'reconnecting', reason: 'first_byte_timeout', attempt: 2 });
  await advance(harness.snapshot().retryInMs ?? 0);
  await advance(10_000);
}

describe('long-poll fallback', () => {
  it('falls back after repeated first-byte timeouts and delivers the same events', async () => {
    const harness = createHarness();
    const { network, client, snapshot, transitions } = harness;
    const seen: string[] = [];
    client.on('notification', (event) => seen.push(`${event.id}:${event.payload.title}`));
    await stallIntoFallback(harness);
    expect(network.to(STREAM_PATH)).toHaveLength(3);
    expect(network.to(STREAM_PATH).every((pending) => pending.isAborted)).toBe(true);
    expect(snapshot()).toMatchObject({ state: 'fallback', reason: 'stream_stalled', transport: 'long-poll' });
    expect(transitions).toEqual([
      'connecting:connect_called',
      'reconnecting:first_byte_timeout',
      'fallback:stream_stalled',
    ]);

    const first = network.last(POLL_PATH);
    expect(first.request.headers['authorization']).toBe('Bearer token');
    expect(first.url.searchParams.get('after')).toBeNull();
    expect(first.url.searchParams.get('timeoutMs')).toBe('25000');
    first.respondJson(200, poll([{ id: '1', title: 'a' }], '1'));
    await settle();
    expect(seen).toEqual(['1:a']);
    expect(network.to(POLL_PATH)).toHaveLength(1); // polls answered at once are spaced out
    await advance(250);
    const second = network.last(POLL_PATH);
    expect(second.url.searchParams.get('after')).toBe('1');

    // No events: the cursor still moves the resume point, so the next poll does not re-read.
    second.respondJson(200, poll([], '3'));
    await advance(250);
    expect(snapshot().lastEventId).toBe('3');
    expect(network.last(POLL_PATH).url.searchParams.get('after')).toBe('3');
  });

  it('surfaces a reset from a poll', async () => {
    const harness = createHarness();
    const resets: unknown[] = [];
    harness.client.on('reset', (reset) => resets.push(reset));
    await stallIntoFallback(harness);
    harness.network
      .last(POLL_PATH)
      .respondJson(200, poll([{ id: '9', title: 'x' }], '9', { reason: 'gap', since: '8' }));
    await settle();
    expect(resets).toEqual([{ reason: 'gap', since: '8' }]);
  });

  it('probes streaming every fallbackRetryMs and switches back when it works', async () => {
    const harness = createHarness();
    const { network, client, snapshot, transitions } = harness;
    const seen: string[] = [];
    client.on('*', (event) => seen.push(event.id));
    await stallIntoFallback(harness);
    // Like the real server: hold each poll for its full timeoutMs when nothing happens.
    network.onRequest = (pending) => {
      if (pending.url.pathname !== POLL_PATH) return;
      setTimeout(() => {
        if (!pending.isAborted) pending.respondJson(200, poll([], '1'));
      }, 25_000);
    };
    network.last(POLL_PATH).respondJson(200, poll([{ id: '1', title: 'a' }], '1'));
    await advance(60_000 - 1);
    expect(network.to(STREAM_PATH)).toHaveLength(3);
    await advance(1);
    expect(network.to(STREAM_PATH)).toHaveLength(4);
    const probe = network.last(STREAM_PATH);
    expect(probe.request.headers['last-event-id']).toBe('1');
    expect(snapshot().state).toBe('fallback'); // polling goes on while the probe runs
    const openPoll: PendingRequest = network.last(POLL_PATH);
    expect(openPoll.isAborted).toBe(false);

    const stream = probe.respondStream();
    stream.push(frames.retry(1000) + frames.established('c9'));
    await settle();
    expect(snapshot()).toMatchObject({
      state: 'open',
      reason: 'stream_restored',
      transport: 'fetch',
      connectionId: 'c9',
    });
    expect(openPoll.isAborted).toBe(true);
    expect(transitions.slice(-2)).toEqual(['fallback:stream_stalled', 'open:stream_restored']);

    stream.push(frames.notification('1') + frames.notification('2'));
    await settle();
    expect(seen).toEqual(['1', '2']);
    const polls = network.to(POLL_PATH).length;
    stream.push(frames.heartbeat());
    await advance(10_000);
    expect(network.to(POLL_PATH)).toHaveLength(polls); // no polling once streaming works again
  });

  it('keeps polling when a probe stalls, and probes again later', async () => {
    const harness = createHarness();
    const { network, snapshot } = harness;
    await stallIntoFallback(harness);
    network.onRequest = (pending) => {
      if (pending.url.pathname === POLL_PATH) pending.respondJson(200, poll([], '0'));
    };
    network.last(POLL_PATH).respondJson(200, poll([], '0'));
    await advance(60_000);
    expect(network.to(STREAM_PATH)).toHaveLength(4);
    await advance(10_000);
    expect(network.last(STREAM_PATH).isAborted).toBe(true);
    expect(snapshot()).toMatchObject({ state: 'fallback' });
    await advance(60_000);
    expect(network.to(STREAM_PATH)).toHaveLength(5);
  });

  it('backs off when polls fail, and returns to fallback when one answers', async () => {
    const harness = createHarness();
    const { network, snapshot, transitions } = harness;
    await stallIntoFallback(harness);
    network.last(POLL_PATH).fail();
    await settle();
    expect(snapshot()).toMatchObject({ state: 'reconnecting', reason: 'network_error', transport: 'long-poll' });
    await advance(snapshot().retryInMs ?? 0);
    network.last(POLL_PATH).respondJson(200, poll([], '0'));
    await settle();
    expect(snapshot()).toMatchObject({ state: 'fallback', attempt: 0 });
    expect(transitions.slice(-3)).toEqual([
      'fallback:stream_stalled',
      'reconnecting:network_error',
      'fallback:stream_stalled',
    ]);
  });

  it('does not fall back on plain network errors (the server is just down)', async () => {
    const { network, snapshot } = createHarness();
    for (let attempt = 0; attempt < 5; attempt++) {
      await settle();
      network.last(STREAM_PATH).fail();
      await settle();
      expect(snapshot()).toMatchObject({ state: 'reconnecting', reason: 'network_error' });
      await advance(snapshot().retryInMs ?? 0);
    }
    expect(network.to(POLL_PATH)).toHaveLength(0);
  });
});
