import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPublisher } from '../src/index.js';
import { openStream, published, type StreamReader } from './helpers/sse-reader.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

const READER = 'sdk-reader';
const TOPIC = `user:${READER}`;

/**
 * The publisher SDK against a real server whose answer is lost after the publish was committed:
 * a TCP proxy in front of it lets the request through and cuts the connection as the answer
 * starts. The SDK retries (a network error), and the retry must not make a second event.
 */
describe('createPublisher when the answer to a committed publish is lost', () => {
  let server: TestApp;
  let proxy: TcpProxy;
  let stream: StreamReader;
  let serviceToken: string;

  beforeAll(async () => {
    server = await startTestApp();
    proxy = await startTcpProxy(Number(new URL(server.url).port));
    stream = await openStream(server.url, { token: await server.token(READER) });
    serviceToken = await server.token('service:sdk', { scope: 'events:publish events:service' });
  });

  afterAll(async () => {
    stream?.close();
    await proxy?.close();
    await server?.close();
  });

  /** The ids of the events on the reader's stream whose payload has `title`, once a marker published after them arrived. */
  async function receivedWithTitle(title: string): Promise<string[]> {
    const marker = await server.publish({ topic: TOPIC, payload: { title: `marker after ${title}`, level: 'info' } });
    await stream.waitFor((events) => published(events).some((event) => event.id === marker.id));
    return published(stream.events)
      .filter((event) => (JSON.parse(event.data) as { payload: { title: string } }).payload.title === title)
      .map((event) => event.id ?? '');
  }

  for (const critical of [false, true]) {
    it(`retries a ${critical ? 'critical' : 'non-critical'} publish under one Idempotency-Key: one event, and its id`, async () => {
      const publisher = createPublisher({
        baseUrl: `http://127.0.0.1:${proxy.port}`,
        token: serviceToken,
        baseDelayMs: 20,
      });
      const cut = proxy.dropAnswers(1);
      const title = `answer lost, critical: ${critical}`;
      const { id } = await publisher.publish({
        topic: TOPIC,
        type: 'notification',
        payload: { title, level: 'info' },
        critical,
      });

      // The first try was handled and answered with success; that answer never reached the SDK.
      expect(cut.map((chunk) => chunk.toString('latin1').split('\r\n')[0])).toEqual([
        `HTTP/1.1 ${critical ? 201 : 202} ${critical ? 'Created' : 'Accepted'}`,
      ]);
      expect(await receivedWithTitle(title)).toEqual([id]);
      if (critical) {
        const stored = await server.app.realtime.internals.store.readAfter({ topics: [TOPIC], after: 0, limit: 1_000 });
        expect(
          stored.filter((event) => JSON.stringify(event.payload).includes(title)).map((event) => event.id),
        ).toEqual([Number(id)]);
      }
    });
  }

  it('without the key the same lost answer and retry make two events (what the SDK prevents)', async () => {
    const title = 'answer lost, retried without a key';
    const body = JSON.stringify({ topic: TOPIC, type: 'notification', payload: { title, level: 'info' } });
    const post = () =>
      fetch(`http://127.0.0.1:${proxy.port}/api/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${serviceToken}`, 'content-type': 'application/json' },
        body,
      });
    proxy.dropAnswers(1);
    await expect(post()).rejects.toThrow();
    expect((await post()).status).toBe(202);
    expect(await receivedWithTitle(title)).toHaveLength(2);
  });
});
