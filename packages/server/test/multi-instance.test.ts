import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  clusterToken as token,
  publishNotification,
  requireClusterServices,
  startCluster,
  type Cluster,
} from './helpers/cluster.js';
import { ofType, openStream, published } from './helpers/sse-reader.js';

const available = await requireClusterServices();

const publish = (url: string, title: string, critical = false) =>
  publishNotification(url, { topic: 'user:mi', title, critical });

describe.skipIf(!available)('several real instances on Redis + PostgreSQL', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster({ size: 2 });
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it('delivers across instances, resumes on another one, and survives kill -9 of the one a client is on', async () => {
    const [a, b] = cluster.instances;
    if (!a || !b) throw new Error('instances missing');
    for (const instance of cluster.instances) {
      const ready = (await (await fetch(`${instance.url}/readyz`)).json()) as Record<string, { kind: string }>;
      expect(ready['bus']?.kind).toBe('redis');
      expect(ready['store']?.kind).toBe('postgres');
    }

    const onA = await openStream(a.url, { token: await token('mi') });
    const first = [await publish(b.url, 'one'), await publish(a.url, 'two', true), await publish(b.url, 'three')];
    await onA.waitFor((events) => published(events).length === 3);
    expect(published(onA.events).map((event) => event.id)).toEqual(first);
    expect(BigInt(first[1] ?? 0)).toBeGreaterThan(BigInt(first[0] ?? 0));

    // The instance the client is on dies; it resumes on the other one and misses nothing.
    await a.stop('SIGKILL');
    const whileDown = [await publish(b.url, 'four'), await publish(b.url, 'five', true)];
    const onB = await openStream(b.url, { token: await token('mi'), lastEventId: first.at(-1) ?? '' });
    await onB.waitFor((events) => events.some((event) => event.event === 'stream.resumed'));
    expect(published(onB.events).map((event) => event.id)).toEqual(whileDown);
    expect(ofType(onB.events, 'stream.resumed')).toEqual([{ replayed: 2, complete: true }]);
    const live = await publish(b.url, 'six');
    await onB.waitFor((events) => published(events).some((event) => event.id === live));
    onA.close();
    onB.close();
  }, 120_000);

  it('resumes many streams at once, each from its own id on overlapping topics, with exactly its own events', async () => {
    // The resumes of one turn share their Redis reads and lease scripts (turn-batch.ts): every
    // stream must still get the events after its own id on its own topics, no more, no less.
    const b = cluster.instances[1];
    if (!b) throw new Error('instance missing');
    const topics = ['doc:storm1', 'doc:storm2', 'doc:storm3'];
    const log: { id: string; topic: string }[] = [];
    for (let index = 0; index < 30; index++) {
      const topic = topics[index % 3] ?? 'doc:storm1';
      log.push({ id: await publishNotification(b.url, { topic, title: `s${index}` }), topic });
    }
    const streams = Array.from({ length: 24 }, (_, index) => ({
      userId: `storm${index}`,
      topics: [topics[index % 3] ?? '', topics[(index + 1) % 3] ?? ''],
      lastEventId: log[index]?.id ?? '',
    }));
    const readers = await Promise.all(
      streams.map(async (stream) =>
        openStream(b.url, {
          token: await token(stream.userId, undefined, stream.topics),
          query: { topics: stream.topics.join(',') },
          lastEventId: stream.lastEventId,
        }),
      ),
    );
    await Promise.all(
      readers.map((reader) => reader.waitFor((events) => events.some((event) => event.event === 'stream.resumed'))),
    );
    streams.forEach((stream, index) => {
      const reader = readers[index];
      const after = log.findIndex((entry) => entry.id === stream.lastEventId);
      const expected = log
        .slice(after + 1)
        .filter((entry) => stream.topics.includes(entry.topic))
        .map((entry) => entry.id);
      expect(published(reader?.events ?? []).map((event) => event.id)).toEqual(expected);
      expect(ofType(reader?.events ?? [], 'stream.resumed')).toEqual([{ replayed: expected.length, complete: true }]);
      reader?.close();
    });
  }, 120_000);
});
