import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SSEClientError } from './errors.js';
import { createSSEClient } from './sse-client.js';
import { frames } from './testing/fake-network.js';
import { advance, createHarness, settle } from './testing/harness.js';
import { STREAM_PATH } from './wire.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('401 and other refusals', () => {
  it('401 → forced token refresh → one retry → open', async () => {
    const { network, getToken, transitions, openStream, snapshot } = createHarness();
    await settle();
    network.last(STREAM_PATH).respondError(401, 'unauthorized');
    await settle();
    expect(getToken.mock.calls).toEqual([[{ forceRefresh: false }], [{ forceRefresh: true }]]);
    expect(network.last(STREAM_PATH).request.headers['authorization']).toBe('Bearer fresh-token');
    await openStream();
    expect(snapshot().state).toBe('open');
    expect(transitions).toEqual(['connecting:connect_called', 'reconnecting:token_refresh', 'open:connected']);
  });

  it('401 again after the forced refresh → closed unauthorized, and nothing more', async () => {
    const { network, getToken, transitions, snapshot } = createHarness();
    await settle();
    network.last(STREAM_PATH).respondError(401, 'unauthorized');
    await settle();
    network.last(STREAM_PATH).respondError(401, 'unauthorized');
    await settle();
    expect(snapshot()).toMatchObject({ state: 'closed', reason: 'unauthorized' });
    expect(snapshot().error).toMatchObject({ code: 'unauthorized', status: 401, serverCode: 'unauthorized' });
    expect(transitions).toEqual(['connecting:connect_called', 'reconnecting:token_refresh', 'closed:unauthorized']);
    await advance(120_000);
    expect(network.to(STREAM_PATH)).toHaveLength(2);
    expect(getToken).toHaveBeenCalledTimes(2);
  });

  it('401 on a reconnect gets the same single retry', async () => {
    const { network, openStream, snapshot, getToken } = createHarness();
    (await openStream()).end();
    await advance(1500);
    network.last(STREAM_PATH).respondError(401, 'unauthorized');
    await settle();
    expect(getToken).toHaveBeenLastCalledWith({ forceRefresh: true });
    await openStream('c2');
    expect(snapshot()).toMatchObject({ state: 'open', reason: 'reconnected' });
  });

  it('403 → closed forbidden', async () => {
    const { network, snapshot } = createHarness({ topics: ['doc:secret'] });
    await settle();
    network.last(STREAM_PATH).respondError(403, 'forbidden_topic');
    await settle();
    expect(snapshot()).toMatchObject({ state: 'closed', reason: 'forbidden' });
    expect(snapshot().error?.serverCode).toBe('forbidden_topic');
  });

  it('429 waits at least Retry-After', async () => {
    const { network, snapshot } = createHarness({ random: () => 0 });
    await settle();
    network.last(STREAM_PATH).respondError(429, 'too_many_connections', { 'retry-after': '7' });
    await settle();
    expect(snapshot()).toMatchObject({ state: 'reconnecting', reason: 'too_many_connections', retryInMs: 7000 });
    await advance(6999);
    expect(network.to(STREAM_PATH)).toHaveLength(1);
    await advance(1);
    expect(network.to(STREAM_PATH)).toHaveLength(2);
  });

  it('503 auth_unavailable (identity provider blip) backs off at least Retry-After, then connects', async () => {
    const { network, snapshot, openStream } = createHarness({ random: () => 0 });
    await settle();
    network.last(STREAM_PATH).respondError(401, 'unauthorized');
    await settle();
    network.last(STREAM_PATH).respondError(503, 'auth_unavailable', { 'retry-after': '4' });
    await settle();
    expect(snapshot()).toMatchObject({ state: 'reconnecting', reason: 'server_error', retryInMs: 4000 });
    expect(snapshot().error).toMatchObject({ status: 503, serverCode: 'auth_unavailable' });
    await advance(4_000);
    expect(network.to(STREAM_PATH)).toHaveLength(3);
    await openStream();
    expect(snapshot().state).toBe('open');
  });

  it('5xx backs off as a server error; other 4xx stop', async () => {
    const first = createHarness();
    await settle();
    first.network.last(STREAM_PATH).respondError(503, 'shutting_down', { 'retry-after': '5' });
    await settle();
    expect(first.snapshot()).toMatchObject({ state: 'reconnecting', reason: 'server_error' });
    expect(first.snapshot().retryInMs).toBeGreaterThanOrEqual(5000);

    const second = createHarness();
    await settle();
    second.network.last(STREAM_PATH).respondJson(404, 'not here');
    await settle();
    expect(second.snapshot()).toMatchObject({ state: 'closed', reason: 'rejected' });
    expect(second.snapshot().error?.status).toBe(404);
  });
});

describe('never anonymous', () => {
  it('waits and retries when getToken fails, sending nothing without a token', async () => {
    const { client, network, getToken, snapshot } = createHarness({ random: () => 0.5, autoConnect: false });
    getToken.mockRejectedValueOnce(new Error('auth server down')).mockResolvedValueOnce('');
    client.connect();
    await settle();
    expect(snapshot()).toMatchObject({ state: 'reconnecting', reason: 'token_error', retryInMs: 250 });
    expect(snapshot().error?.code).toBe('token_error');
    expect(network.requests).toHaveLength(0);
    await advance(250);
    expect(snapshot()).toMatchObject({ state: 'reconnecting', reason: 'token_error', attempt: 2 });
    expect(network.requests).toHaveLength(0);
    await advance(500);
    expect(network.to(STREAM_PATH)).toHaveLength(1);
    expect(network.last(STREAM_PATH).request.headers['authorization']).toBe('Bearer token');
  });

  it('requires getToken', () => {
    // @ts-expect-error: getToken is required
    expect(() => createSSEClient({ url: 'http://sse.test' })).toThrow(/never connects anonymously/);
  });
});

describe('token lifetime', () => {
  it('auth.expiring → fresh token → refresh POST; the stream stays up', async () => {
    const { network, openStream, getToken, snapshot } = createHarness();
    const stream = await openStream('conn-7');
    network.onRequest = (pending) => {
      if (pending.request.method === 'POST') pending.respondJson(200, { connectionId: 'conn-7' });
    };
    stream.push(frames.control('auth.expiring', { connectionId: 'conn-7', expiresAt: new Date(60_000).toISOString() }));
    await settle();
    expect(getToken).toHaveBeenLastCalledWith({ forceRefresh: true });
    const refresh = network.last('/api/sse/connections/conn-7/refresh');
    expect(refresh.request.method).toBe('POST');
    expect(refresh.request.headers['authorization']).toBe('Bearer fresh-token');
    expect(snapshot()).toMatchObject({ state: 'open', connectionId: 'conn-7' });
    expect(network.to(STREAM_PATH)).toHaveLength(1);
  });

  it('a refresh answered 503 (the server cannot check tokens right now) is retried after Retry-After', async () => {
    const { network, openStream, snapshot, client } = createHarness({ random: () => 0 });
    const errors: SSEClientError[] = [];
    client.on('error', (error) => errors.push(error));
    const stream = await openStream('conn-9');
    stream.push(frames.control('auth.expiring', { connectionId: 'conn-9', expiresAt: new Date(60_000).toISOString() }));
    await settle();
    const refreshPath = '/api/sse/connections/conn-9/refresh';
    network.last(refreshPath).respondError(503, 'auth_unavailable', { 'retry-after': '3' });
    await settle();
    expect(errors.map((error) => [error.code, error.status, error.retryAfterMs])).toEqual([
      ['refresh_failed', 503, 3000],
    ]);
    await advance(2_999);
    expect(network.to(refreshPath)).toHaveLength(1);
    await advance(1);
    expect(network.to(refreshPath)).toHaveLength(2);
    network.last(refreshPath).respondJson(200, { connectionId: 'conn-9' });
    await settle();
    expect(snapshot()).toMatchObject({ state: 'open', connectionId: 'conn-9' });
    expect(network.to(STREAM_PATH)).toHaveLength(1);
  });

  it('a refresh refused with 401 is not retried: the stream expires and reconnects', async () => {
    const { network, openStream } = createHarness({ random: () => 0 });
    const stream = await openStream('conn-10');
    stream.push(
      frames.control('auth.expiring', { connectionId: 'conn-10', expiresAt: new Date(60_000).toISOString() }),
    );
    await settle();
    network.last('/api/sse/connections/conn-10/refresh').respondError(401, 'unauthorized');
    await settle();
    await advance(60_000);
    expect(network.to('/api/sse/connections/conn-10/refresh')).toHaveLength(1);
  });

  it('a failed refresh lets the stream expire, then reconnects at once with a fresh token', async () => {
    const { network, openStream, getToken, snapshot, client, transitions } = createHarness();
    const errors: SSEClientError[] = [];
    client.on('error', (error) => errors.push(error));
    const stream = await openStream('conn-8');
    stream.push(frames.control('auth.expiring', { connectionId: 'conn-8', expiresAt: new Date(60_000).toISOString() }));
    await settle();
    network.last('/api/sse/connections/conn-8/refresh').respondError(500, 'internal_error');
    await settle();
    expect(errors.map((error) => error.code)).toEqual(['refresh_failed']);
    expect(snapshot().state).toBe('open');

    stream.push(frames.control('auth.expired', { connectionId: 'conn-8' }));
    stream.end();
    await settle();
    expect(transitions.at(-1)).toBe('reconnecting:auth_expired');
    expect(network.to(STREAM_PATH)).toHaveLength(2);
    expect(getToken).toHaveBeenLastCalledWith({ forceRefresh: true });
    expect(network.last(STREAM_PATH).request.headers['authorization']).toBe('Bearer fresh-token');
  });
});
