import { EventSource } from 'eventsource';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

describe('a third-party client (the `eventsource` package)', () => {
  let server: TestApp;
  let proxy: TcpProxy;
  beforeEach(async () => {
    server = await startTestApp({ RETRY_MS: '200' });
    proxy = await startTcpProxy(Number(new URL(server.url).port));
  });
  afterEach(async () => {
    await proxy.close();
    await server.close();
  });

  it('reconnects by itself with Last-Event-ID after the socket is cut mid-stream, losing nothing', async () => {
    const token = await server.token('es-user');
    const received: string[] = [];
    const resumes: { replayed: number; complete: boolean }[] = [];
    let opens = 0;
    const source = new EventSource(`http://127.0.0.1:${proxy.port}/api/sse/stream`, {
      fetch: (input, init) =>
        fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${token}` } }),
    });
    source.addEventListener('open', () => opens++);
    source.addEventListener('notification', (event) => received.push(event.lastEventId));
    source.addEventListener('stream.resumed', (event) => resumes.push(JSON.parse(event.data)));
    try {
      await waitUntil(() => opens === 1);
      const published: string[] = [];
      for (let round = 0; round < 5; round++) {
        for (let index = 0; index < 20; index++) {
          published.push((await server.publish({ topic: 'user:es-user' })).id);
          // Cut the socket in the middle of a burst, with events in flight.
          if (index === 10) proxy.dropAll();
        }
        await waitUntil(() => received.length === published.length, 15_000);
      }
      expect(received).toEqual(published);
      expect(opens).toBeGreaterThanOrEqual(6);
      expect(resumes.length).toBeGreaterThanOrEqual(5);
      expect(resumes.every((resume) => resume.complete)).toBe(true);
    } finally {
      source.close();
    }
  });
});

async function waitUntil(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
