import http2 from 'node:http2';
import { once } from 'node:events';
import { EventSource } from 'eventsource';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  clusterToken as token,
  publishNotification,
  requireClusterServices,
  startCluster,
  type Cluster,
} from './helpers/cluster.js';
import { replaceOnce, requireNginx, startNginx, type NginxProcess } from './helpers/nginx-process.js';
import { ofType, openStream, published, type StreamReader } from './helpers/sse-reader.js';

/**
 * deploy/nginx.conf, run by Debian's real nginx, in front of two real instances on Redis +
 * PostgreSQL. The heartbeat is 30 s, so no frame in these tests is pushed out by a heartbeat.
 */
const HEARTBEAT_MS = 30_000;

const available = (await requireClusterServices()) && requireNginx();

interface Established {
  connectionId: string;
  instanceId: string;
}

const isEstablished = (events: readonly EventSourceMessage[]) =>
  events.some((event) => event.event === 'connection.established');

function establishedOf(stream: StreamReader): Established {
  const [established] = ofType<Established>(stream.events, 'connection.established');
  if (!established) throw new Error('no connection.established');
  return established;
}

async function waitUntil(predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe.skipIf(!available)('behind nginx (deploy/nginx.conf)', () => {
  let cluster: Cluster;
  let nginx: NginxProcess;
  let backends: [string, string];
  /** A value of the stickiness cookie that routes to each instance, by instance id. */
  const affinityKeys = new Map<string, string>();

  /** Opens a stream through nginx, pinned to an upstream by the stickiness cookie when `key` is given. */
  const openThroughNginx = async (userId: string, options: { key?: string; lastEventId?: string } = {}) =>
    openStream(nginx.httpUrl, {
      token: await token(userId),
      ...(options.lastEventId === undefined ? {} : { lastEventId: options.lastEventId }),
      headers: options.key ? { cookie: `is_affinity=${options.key}` } : {},
    });

  beforeAll(async () => {
    cluster = await startCluster({
      size: 2,
      env: { HEARTBEAT_MS: String(HEARTBEAT_MS), RETRY_MS: '200', TRUST_PROXY: '1' },
    });
    const [first, second] = cluster.instances.map((instance) => new URL(instance.url).host);
    if (!first || !second) throw new Error('instances missing');
    backends = [first, second];
    nginx = await startNginx({ backends });
    // The consistent hash decides which key lands where: find one key per upstream.
    for (let index = 0; affinityKeys.size < 2 && index < 100; index++) {
      const key = `key-${index}`;
      const probe = await openThroughNginx('nx-probe', { key });
      await probe.waitFor(isEstablished);
      probe.close();
      const { instanceId } = establishedOf(probe);
      if (!affinityKeys.has(instanceId)) affinityKeys.set(instanceId, key);
    }
    expect([...affinityKeys.keys()].sort()).toEqual([...cluster.instanceIds].sort());
  }, 120_000);

  afterAll(async () => {
    await nginx?.stop();
    await cluster?.stop();
  });

  it('passes each frame through at once: an event arrives long before the next heartbeat', async () => {
    const stream = await openStream(nginx.httpUrl, {
      token: await token('nx-live'),
      headers: { 'accept-encoding': 'gzip, deflate, br' },
    });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(stream.headers.get('cache-control')).toBe('no-cache, no-transform');
    expect(stream.headers.get('content-encoding')).toBeNull();
    // First visit: nginx hands out the stickiness cookie.
    expect(stream.headers.get('set-cookie')).toMatch(/^is_affinity=[0-9a-f]{32}; Path=\/; HttpOnly; SameSite=Lax$/);
    // The first frame is not held back either.
    await stream.waitFor(isEstablished, 5_000);

    const sentAt = Date.now();
    const id = await publishNotification(nginx.httpUrl, { topic: 'user:nx-live', title: 'now' });
    await stream.waitFor((events) => published(events).some((event) => event.id === id), 5_000);
    expect(Date.now() - sentAt).toBeLessThan(5_000);
    expect(ofType(stream.events, 'heartbeat')).toEqual([]);
    stream.close();
  });

  it('keeps /metrics inside: refused through the proxy (JSON 404) while each backend serves it', async () => {
    const outside = await fetch(`${nginx.httpUrl}/metrics`);
    expect(outside.status).toBe(404);
    expect(await outside.json()).toEqual({ error: { code: 'not_found', message: 'no route GET /metrics' } });
    const inside = await fetch(`${cluster.instances[0]?.url ?? ''}/metrics`);
    expect(inside.status).toBe(200);
    expect(await inside.text()).toContain('sse_connections_active');
  });

  it('control: a buffering, compressing nginx holds the same event back (so the test above can fail)', async () => {
    // nginx 1.22 passes small SSE frames through promptly with proxy_buffering alone, and with
    // gzip alone; together they hold them. deploy/nginx.conf disables both on the SSE paths
    // (and the server's X-Accel-Buffering: no would disable the buffering a second time).
    const holding = await startNginx({
      backends,
      adapt: (config) =>
        replaceOnce(
          replaceOnce(config, 'proxy_buffering off;', 'proxy_buffering on; proxy_ignore_headers X-Accel-Buffering;'),
          'gzip off;',
          'gzip on; gzip_types text/event-stream;',
        ),
    });
    const abort = new AbortController();
    try {
      let received = '';
      const accessToken = await token('nx-held');
      // Read by hand: a proxy holding the body may hold the response headers too.
      const reading = (async () => {
        const response = await fetch(`${holding.httpUrl}/api/sse/stream`, {
          headers: { authorization: `Bearer ${accessToken}`, 'accept-encoding': 'gzip' },
          signal: abort.signal,
        });
        const decoder = new TextDecoder();
        for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
          received += decoder.decode(chunk, { stream: true });
        }
      })().catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const id = await publishNotification(nginx.httpUrl, { topic: 'user:nx-held', title: 'held' });
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect(received).not.toContain(id);
      expect(received).not.toContain('connection.established');
      abort.abort();
      await reading;
    } finally {
      abort.abort();
      await holding.stop();
    }
  });

  it('resumes on the other upstream with exactly the missed events', async () => {
    const [idA, idB] = cluster.instanceIds;
    if (!idA || !idB) throw new Error('instances missing');
    const onA = await openThroughNginx('nx-resume', { key: affinityKeys.get(idA) ?? '' });
    await onA.waitFor(isEstablished);
    // The same cookie lands on the same instance again: the stickiness is deterministic.
    expect(establishedOf(onA).instanceId).toBe(idA);
    const seen = [
      await publishNotification(nginx.httpUrl, { topic: 'user:nx-resume', title: 'one' }),
      await publishNotification(nginx.httpUrl, { topic: 'user:nx-resume', title: 'two', critical: true }),
    ];
    await onA.waitFor((events) => published(events).length === 2);
    expect(published(onA.events).map((event) => event.id)).toEqual(seen);
    onA.close();
    await onA.ended;

    const missed = [
      await publishNotification(nginx.httpUrl, { topic: 'user:nx-resume', title: 'three' }),
      await publishNotification(nginx.httpUrl, { topic: 'user:nx-resume', title: 'four', critical: true }),
      await publishNotification(nginx.httpUrl, { topic: 'user:nx-resume', title: 'five' }),
    ];
    const onB = await openThroughNginx('nx-resume', { key: affinityKeys.get(idB) ?? '', lastEventId: seen[1] ?? '' });
    await onB.waitFor((events) => events.some((event) => event.event === 'stream.resumed'));
    expect(establishedOf(onB).instanceId).toBe(idB);
    expect(published(onB.events).map((event) => event.id)).toEqual(missed);
    expect(ofType(onB.events, 'stream.resumed')).toEqual([{ replayed: 3, complete: true }]);

    const live = await publishNotification(nginx.httpUrl, { topic: 'user:nx-resume', title: 'six' });
    await onB.waitFor((events) => published(events).some((event) => event.id === live));
    expect(published(onB.events).map((event) => event.id)).toEqual([...missed, live]);
    onB.close();
  });

  it('serves streams over HTTP/2 with TLS, several on one connection', async () => {
    const session = http2.connect(nginx.httpsUrl, { ca: nginx.certificate });
    try {
      await once(session, 'connect');
      expect(session.alpnProtocol).toBe('h2');
      const accessToken = await token('nx-h2');
      const streams = await Promise.all(
        [0, 1].map(async () => {
          const request = session.request({
            ':path': '/api/sse/stream',
            authorization: `Bearer ${accessToken}`,
            'accept-encoding': 'gzip',
          });
          const [headers] = (await once(request, 'response')) as [http2.IncomingHttpHeaders];
          const events: EventSourceMessage[] = [];
          const parser = createParser({ onEvent: (event) => events.push(event) });
          request.setEncoding('utf8');
          request.on('data', (chunk: string) => parser.feed(chunk));
          return { request, headers, events };
        }),
      );
      for (const { headers, events } of streams) {
        expect(headers[':status']).toBe(200);
        expect(headers['content-type']).toBe('text/event-stream; charset=utf-8');
        expect(headers['content-encoding']).toBeUndefined();
        await waitUntil(() => isEstablished(events), 5_000, 'connection.established over HTTP/2');
      }
      const id = await publishNotification(nginx.httpUrl, { topic: 'user:nx-h2', title: 'multiplexed' });
      for (const { events } of streams) {
        await waitUntil(() => published(events).some((event) => event.id === id), 5_000, 'the event over HTTP/2');
      }
      for (const { request } of streams) request.close();
    } finally {
      session.close();
    }
  });

  it('a client on an instance killed with SIGKILL reconnects through nginx and loses nothing', async () => {
    const [victimId, survivorId] = cluster.instanceIds;
    if (!victimId || !survivorId) throw new Error('instances missing');
    const accessToken = await token('nx-kill');
    const topic = 'user:nx-kill';
    // A browser whose stickiness cookie points at the instance about to die.
    const cookie = `is_affinity=${affinityKeys.get(victimId) ?? ''}`;
    let releaseReconnect!: () => void;
    const reconnectAllowed = new Promise<void>((resolve) => (releaseReconnect = resolve));
    let attempts = 0;
    let errors = 0;
    const instances: string[] = [];
    const received: string[] = [];
    const resumes: unknown[] = [];
    const source = new EventSource(`${nginx.httpUrl}/api/sse/stream`, {
      fetch: async (input, init) => {
        // The reconnect waits until the events it must catch up on have been published.
        if (++attempts > 1) await reconnectAllowed;
        return fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${accessToken}`, cookie } });
      },
    });
    source.addEventListener('connection.established', (event) => {
      instances.push((JSON.parse(event.data) as Established).instanceId);
    });
    source.addEventListener('notification', (event) => received.push(event.lastEventId));
    source.addEventListener('stream.resumed', (event) => resumes.push(JSON.parse(event.data)));
    source.addEventListener('error', () => errors++);
    try {
      await waitUntil(() => instances.length === 1, 10_000, 'the first connection');
      expect(instances).toEqual([victimId]);
      const before = [
        await publishNotification(nginx.httpUrl, { topic, title: 'one' }),
        await publishNotification(nginx.httpUrl, { topic, title: 'two', critical: true }),
      ];
      await waitUntil(() => received.length === 2, 10_000, 'the first events');

      await cluster.byInstanceId(victimId).stop('SIGKILL');
      // nginx cuts the client's stream when its upstream dies.
      await waitUntil(() => errors > 0, 10_000, 'the stream to be cut');
      // Published through nginx while the client is away; nginx sends them to the survivor.
      const whileAway = [
        await publishNotification(nginx.httpUrl, { topic, title: 'three' }),
        await publishNotification(nginx.httpUrl, { topic, title: 'four', critical: true }),
        await publishNotification(nginx.httpUrl, { topic, title: 'five' }),
      ];
      releaseReconnect();
      await waitUntil(() => resumes.length === 1, 15_000, 'the resume');
      // Same cookie, dead upstream: nginx tried it, then passed the reconnect on to the survivor.
      expect(instances).toEqual([victimId, survivorId]);
      expect(nginx.output()).toContain('(111: Connection refused) while connecting to upstream');
      expect(resumes).toEqual([{ replayed: 3, complete: true }]);
      const live = await publishNotification(nginx.httpUrl, { topic, title: 'six' });
      await waitUntil(() => received.includes(live), 10_000, 'a live event after the resume');
      expect(received).toEqual([...before, ...whileAway, live]);
    } finally {
      source.close();
    }
  }, 60_000);
});
