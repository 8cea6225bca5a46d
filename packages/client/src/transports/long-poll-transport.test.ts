import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FakeNetwork } from '../testing/fake-network.js';
import { advance, settle } from '../testing/harness.js';
import type { TransportEnd, TransportMessage } from '../transport.js';
import { openLongPollTransport } from './long-poll-transport.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function open(lastEventId: string | null) {
  const network = new FakeNetwork();
  const messages: TransportMessage[] = [];
  const cursors: string[] = [];
  const ends: TransportEnd[] = [];
  openLongPollTransport(
    { baseUrl: 'http://sse.test', topics: ['user:u1'], lastEventId, token: 'tok', fetch: network.fetch },
    {
      onMessage: (message) => messages.push(message),
      onRetry: () => undefined,
      onCursor: (cursor) => cursors.push(cursor),
      onEnd: (end) => ends.push(end),
    },
    { timeoutMs: 25_000, graceMs: 10_000 },
  );
  return { network, messages, cursors, ends };
}

describe('long-poll transport', () => {
  it('asks after the resume id and reports reset, events and cursor as a stream would', async () => {
    const { network, messages, cursors, ends } = open('7');
    await settle();
    const request = network.requests[0]!;
    expect(request.url.searchParams.get('after')).toBe('7');
    expect(request.url.searchParams.get('topics')).toBe('user:u1');
    expect(request.request.headers['authorization']).toBe('Bearer tok');
    const envelope = { topic: 'user:u1', type: 'notification', ts: 't', payload: { title: 'x', level: 'info' } };
    request.respondJson(200, { events: [{ ...envelope, id: '8' }], lastEventId: '8', reset: { reason: 'unknown_id' } });
    await settle();
    expect(messages).toEqual([
      { event: 'stream.reset', data: '{"reason":"unknown_id"}' },
      { event: 'notification', id: '8', data: JSON.stringify(envelope) },
    ]);
    expect(cursors).toEqual(['8']);
    expect(ends).toEqual([{ kind: 'ended' }]);
  });

  it('gives up on an answer that never comes', async () => {
    const { network, ends } = open(null);
    await advance(34_999);
    expect(ends).toEqual([]);
    await advance(1);
    expect(ends[0]).toMatchObject({ kind: 'failed', error: { code: 'network_error' } });
    expect(network.requests[0]!.isAborted).toBe(true);
  });

  it('rejects an answer that is not the poll JSON', async () => {
    const { network, ends } = open(null);
    await settle();
    network.requests[0]!.respondJson(200, { nope: true });
    await settle();
    expect(ends[0]).toMatchObject({ kind: 'failed', error: { code: 'bad_response' } });
  });
});
