import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  clusterToken as token,
  publishNotification,
  requireClusterServices,
  startCluster,
  type Cluster,
} from './helpers/cluster.js';
import { expectJsonError } from './helpers/http-assertions.js';
import { openStream, published, type StreamReader } from './helpers/sse-reader.js';

const available = await requireClusterServices();

const TOPIC = 'user:racer';

/** One publish with an Idempotency-Key through `baseUrl`: its status, body and whether it was a replay. */
async function publishWithKey(baseUrl: string, key: string, body: unknown) {
  const response = await fetch(new URL('/api/events', baseUrl), {
    method: 'POST',
    headers: {
      authorization: `Bearer ${await token('racing-service', 'events:publish')}`,
      'content-type': 'application/json',
      'idempotency-key': key,
    },
    body: JSON.stringify(body),
  });
  return { response, status: response.status, text: await response.clone().text() };
}

const notification = (title: string, critical: boolean) => ({
  topic: TOPIC,
  type: 'notification',
  payload: { title, level: 'info' },
  critical,
});

describe.skipIf(!available)('Idempotency-Key across two real instances on Redis', () => {
  let cluster: Cluster;
  let streams: StreamReader[] = [];
  /** Ids of the markers {@link receivedIds} published, left out of what it returns. */
  const markers = new Set<string>();

  beforeAll(async () => {
    cluster = await startCluster({ size: 2 });
    streams = await Promise.all(
      cluster.instances.map(async (instance) => openStream(instance.url, { token: await token('racer') })),
    );
  }, 120_000);

  afterAll(async () => {
    for (const stream of streams) stream.close();
    await cluster?.stop();
  });

  /** The ids every stream received, once a marker published after everything else has reached them all. */
  async function receivedIds(): Promise<string[][]> {
    const [a] = cluster.instances;
    if (!a) throw new Error('no instance');
    const marker = await publishNotification(a.url, {
      topic: TOPIC,
      title: `marker-${randomBytes(4).toString('hex')}`,
    });
    markers.add(marker);
    await Promise.all(
      streams.map((stream) => stream.waitFor((events) => published(events).some((event) => event.id === marker))),
    );
    return streams.map((stream) =>
      published(stream.events)
        .map((event) => event.id ?? '')
        .filter((id) => !markers.has(id)),
    );
  }

  it('ends concurrent duplicates racing on both instances with one event per key and one answer each', async () => {
    const [a, b] = cluster.instances;
    if (!a || !b) throw new Error('instances missing');
    const before = await receivedIds();
    const keys = Array.from({ length: 12 }, (_, index) => `race-${index}-${randomBytes(4).toString('hex')}`);
    // Six requests per key, at once, alternating instances; half the keys critical (a PostgreSQL
    // write keeps the first request in flight longer).
    const results = await Promise.all(
      keys.map((key, index) =>
        Promise.all(
          Array.from({ length: 6 }, (_, attempt) =>
            publishWithKey((attempt % 2 === 0 ? a : b).url, key, notification(key, index % 2 === 0)),
          ),
        ),
      ),
    );
    const ids: string[] = [];
    for (const [index, answers] of results.entries()) {
      const expected = index % 2 === 0 ? 201 : 202;
      expect(
        answers.map((answer) => answer.status),
        answers.map((answer) => answer.text).join('\n'),
      ).toEqual(Array(6).fill(expected));
      expect(new Set(answers.map((answer) => answer.text)).size).toBe(1);
      expect(answers.filter((answer) => answer.response.headers.get('idempotent-replayed') === 'true')).toHaveLength(5);
      ids.push((JSON.parse(answers[0]?.text ?? '{}') as { id: string }).id);
    }
    expect(new Set(ids).size).toBe(keys.length);

    const after = await receivedIds();
    for (const [index, received] of after.entries()) {
      const fresh = received.slice(before[index]?.length ?? 0);
      expect([...fresh].sort()).toEqual([...ids].sort());
    }
  });

  it('replays on one instance what the other answered, and refuses the key with another body on either', async () => {
    const [a, b] = cluster.instances;
    if (!a || !b) throw new Error('instances missing');
    const key = `cross-${randomBytes(4).toString('hex')}`;
    const first = await publishWithKey(a.url, key, notification('cross', true));
    expect(first.status).toBe(201);
    const retry = await publishWithKey(b.url, key, notification('cross', true));
    expect(retry.status).toBe(201);
    expect(retry.text).toBe(first.text);
    expect(retry.response.headers.get('idempotent-replayed')).toBe('true');
    for (const instance of [a, b]) {
      await expectJsonError(
        (await publishWithKey(instance.url, key, notification('other', true))).response,
        422,
        'idempotency_key_reused',
      );
    }
  });
});
