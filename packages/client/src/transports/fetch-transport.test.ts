import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FakeNetwork } from '../testing/fake-network.js';
import { settle } from '../testing/harness.js';
import type { TransportEnd, TransportHandlers, TransportMessage } from '../transport.js';
import { openFetchTransport } from './fetch-transport.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function recorder() {
  const messages: TransportMessage[] = [];
  const retries: number[] = [];
  const ends: TransportEnd[] = [];
  const handlers: TransportHandlers = {
    onMessage: (message) => messages.push(message),
    onRetry: (retryMs) => retries.push(retryMs),
    onCursor: () => undefined,
    onEnd: (end) => ends.push(end),
  };
  return { messages, retries, ends, handlers };
}

function open(lastEventId: string | null = null) {
  const network = new FakeNetwork();
  const record = recorder();
  const transport = openFetchTransport(
    { baseUrl: 'http://sse.test/', topics: [], lastEventId, token: 'tok', fetch: network.fetch },
    record.handlers,
  );
  return { network, transport, ...record };
}

describe('fetch transport', () => {
  it('sends Accept, Bearer and Last-Event-ID, and no topics parameter by default', async () => {
    const { network } = open('41');
    await settle();
    const [request] = network.requests;
    expect(request?.request.url).toBe('http://sse.test/api/sse/stream');
    expect(request?.request.headers).toMatchObject({
      accept: 'text/event-stream',
      authorization: 'Bearer tok',
      'last-event-id': '41',
    });
  });

  it('parses frames split anywhere across chunks (CRLF too), with retry: and comments', async () => {
    const { network, messages, retries, ends } = open();
    await settle();
    const stream = network.requests[0]!.respondStream();
    stream.push('retry: 2000\n\n: comment\n\nev');
    stream.push('ent: heartbeat\ndata: {"ts":"x"}\n');
    stream.push('\nid: 1\r\nevent: notification\r\ndata: {"a":');
    stream.push('1}\r\n\r\n');
    await settle();
    expect(retries).toEqual([2000]);
    expect(messages).toEqual([
      { event: 'heartbeat', data: '{"ts":"x"}', id: undefined },
      { event: 'notification', data: '{"a":1}', id: '1' },
    ]);
    stream.end();
    await settle();
    expect(ends).toEqual([{ kind: 'ended' }]);
  });

  it('reports a 429 with its Retry-After and error code', async () => {
    const { network, ends } = open();
    await settle();
    network.requests[0]!.respondError(429, 'too_many_connections', { 'retry-after': '3' });
    await settle();
    expect(ends).toHaveLength(1);
    const end = ends[0]!;
    expect(end.kind).toBe('failed');
    if (end.kind !== 'failed') return;
    expect(end.retryAfterMs).toBe(3000);
    expect(end.error).toMatchObject({ code: 'http_error', status: 429, serverCode: 'too_many_connections' });
  });

  it('rejects a 200 that is not an event stream (a captive portal page)', async () => {
    const { network, ends } = open();
    await settle();
    network.requests[0]!.respondJson(200, { hello: 'portal' });
    await settle();
    expect(ends[0]).toMatchObject({ kind: 'failed', error: { code: 'bad_response' } });
  });

  it('reports a broken body as a network error', async () => {
    const { network, ends } = open();
    await settle();
    network.requests[0]!.respondStream().fail();
    await settle();
    expect(ends[0]).toMatchObject({ kind: 'failed', error: { code: 'network_error' } });
  });

  it('goes silent after close(): aborts the request, cancels the body, reports nothing', async () => {
    const { network, transport, messages, ends } = open();
    await settle();
    const stream = network.requests[0]!.respondStream();
    await settle();
    transport.close();
    stream.push('event: heartbeat\ndata: {}\n\n');
    await settle();
    expect(network.requests[0]!.isAborted).toBe(true);
    expect(messages).toEqual([]);
    expect(ends).toEqual([]);
  });
});
