import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { requireService, TEST_REDIS_URL } from '../../../test/helpers/services.js';
import { ID_SLOTS } from '../../core/event-id.js';
import type { EventRecord } from '../../core/event-record.js';
import { createEventBus } from './create-event-bus.js';
import { describeEventBusContract } from './event-bus.contract.js';
import { RedisEventBus, redisBusKeys, type RedisEventBusOptions } from './redis-event-bus.js';
import { notificationDraft as draft, waitUntil } from '../../../test/helpers/bus-events.js';

const available = await requireService('Redis', TEST_REDIS_URL);

/** Every prefix this run used: their keys are deleted at the end (never FLUSHDB: Redis is shared). */
const prefixes = new Set<string>();
function freshPrefix(): string {
  const prefix = `test-bus-${randomBytes(6).toString('hex')}`;
  prefixes.add(prefix);
  return prefix;
}

const open: RedisEventBus[] = [];
function createBus(prefix: string, overrides: Partial<RedisEventBusOptions> = {}): RedisEventBus {
  const bus = new RedisEventBus({
    url: TEST_REDIS_URL,
    limits: { maxEvents: 100, maxAgeMs: 3_600_000 },
    keyPrefix: prefix,
    connectionName: `${prefix}-${open.length}`,
    ...overrides,
  });
  open.push(bus);
  return bus;
}

async function startedBus(prefix: string, overrides: Partial<RedisEventBusOptions> = {}): Promise<RedisEventBus> {
  const bus = createBus(prefix, overrides);
  const floor = Date.now() * 1000;
  await bus.start({ idFloor: floor, coveredFrom: floor });
  return bus;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(!available)('RedisEventBus', () => {
  let admin: Redis;

  /** SCAN + DEL of one prefix's keys: what a Redis restart without persistence does to us. */
  async function deleteKeys(prefix: string): Promise<number> {
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', redisBusKeys(prefix).pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await admin.del(...keys);
    } while (cursor !== '0');
    return deleted;
  }

  async function keysOf(prefix: string): Promise<string[]> {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', redisBusKeys(prefix).pattern, 'COUNT', 1000);
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0');
    return found.sort();
  }

  async function killSubscriber(connectionName: string): Promise<void> {
    const list = await admin.client('LIST');
    const line = String(list)
      .split('\n')
      .find((entry) => entry.includes(` name=${connectionName}:sub `));
    const id = line?.match(/(?:^|\s)id=(\d+)/)?.[1];
    if (id === undefined) throw new Error(`no subscriber connection named ${connectionName}:sub`);
    await admin.client('KILL', 'ID', id);
  }

  beforeAll(() => {
    admin = new Redis(TEST_REDIS_URL, { connectionName: 'test-bus-admin' });
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((bus) => bus.close()));
  });
  afterAll(async () => {
    for (const prefix of prefixes) await deleteKeys(prefix);
    await admin.quit();
  });

  describeEventBusContract('redis', { create: async (limits) => createBus(freshPrefix(), { limits }) });

  it('keeps every key under one hash tag', async () => {
    const prefix = freshPrefix();
    const bus = await startedBus(prefix, { limits: { maxEvents: 2, maxAgeMs: 3_600_000 } });
    for (let index = 0; index < 4; index++) await bus.publish(draft(`doc:${index % 2}`));
    const keys = await keysOf(prefix);
    expect(keys).toEqual(
      ['active', 'epoch', 'log:doc:0', 'log:doc:1', 'seq', 'slots', 'trim'].map((key) => `{${prefix}}:${key}`),
    );
    expect(
      () => new RedisEventBus({ url: TEST_REDIS_URL, limits: { maxEvents: 1, maxAgeMs: 1 }, keyPrefix: 'a}b' }),
    ).toThrow(/invalid Redis key prefix/);
  });

  it('leaves out a log entry it cannot decode, counting it, instead of failing the whole read', async () => {
    const prefix = freshPrefix();
    const bus = await startedBus(prefix);
    const first = await bus.publish(draft('t'));
    const admin = new Redis(TEST_REDIS_URL);
    try {
      await admin.xadd(`${redisBusKeys(prefix).logPrefix}t`, `${first.id + 1}-0`, 'r', '{"id": not json');
    } finally {
      admin.disconnect();
    }
    const second = await bus.publish(draft('t'));
    const read = await bus.read(['t'], 0, 10);
    expect(read.events.map((event) => event.id)).toEqual([first.id, second.id]);
    expect(read.unreadable).toBe(1);
    expect(await bus.health()).toEqual({ status: 'up' });
  });

  it('reads of one turn share one script call, and each reader gets exactly what it reads alone', async () => {
    const bus = await startedBus(freshPrefix(), { limits: { maxEvents: 100, maxAgeMs: 3_600_000 } });
    const ids: number[] = [];
    for (let index = 0; index < 12; index++) ids.push((await bus.publish(draft(['a', 'b', 'c'][index % 3] ?? 'a'))).id);
    const at = (index: number) => ids[index] ?? 0;
    const reads: [string[], number, number][] = [
      [['a', 'b'], at(2), 100],
      [['b', 'c'], at(6), 100], // the same topic as the first reader, from another id
      [['a', 'c'], 0, 3], // truncated: the newest 3
      [['c'], at(11), 100], // nothing after it
      [['a', 'b', 'a'], at(0), 100], // a topic named twice
      [['quiet'], at(3), 100], // a topic with no log
      [['a'], at(4) + 1, 100], // an id another instance issued alone: a gap on every topic
    ];
    const alone = [];
    for (const [topics, after, limit] of reads) alone.push(await bus.read(topics, after, limit));
    expect(alone[0]?.events.map((event) => event.id)).toEqual([at(3), at(4), at(6), at(7), at(9), at(10)]);
    expect(alone[2]).toMatchObject({ truncated: true });

    const spy = vi.spyOn(Redis.prototype, 'sendCommand');
    try {
      const together = await Promise.all(reads.map(([topics, after, limit]) => bus.read(topics, after, limit)));
      expect(together).toEqual(alone);
      expect(spy.mock.calls.map(([command]) => command.name)).toEqual(['evalsha']);
    } finally {
      spy.mockRestore();
    }
  });

  it('fails only the reader of a topic Redis cannot read, not the other readers of its turn', async () => {
    const prefix = freshPrefix();
    const bus = await startedBus(prefix);
    const first = await bus.publish(draft('fine'));
    const second = await bus.publish(draft('fine'));
    await admin.set(`${redisBusKeys(prefix).logPrefix}broken`, 'not a stream');
    const [fine, broken] = await Promise.all([bus.read(['fine'], first.id, 100), bus.read(['broken'], first.id, 100)]);
    expect(fine).toMatchObject({ events: [second], gapTopics: [] });
    // Answered by this instance alone (as when Redis fails a read), which vouches for nothing before it.
    expect(broken).toMatchObject({ events: [], gapTopics: ['broken'] });
  });

  it('publishes with exactly one round trip (one EVALSHA)', async () => {
    const bus = await startedBus(freshPrefix());
    await bus.publish(draft('t')); // the first use of the script on a connection is an EVAL
    const spy = vi.spyOn(Redis.prototype, 'sendCommand');
    try {
      for (let index = 0; index < 20; index++) await bus.publish(draft('t'));
      const names = spy.mock.calls.map(([command]) => command.name);
      expect(names).toEqual(Array.from({ length: 20 }, () => 'evalsha'));
    } finally {
      spy.mockRestore();
    }
  });

  it('fans out across instances sharing a prefix, with one strictly increasing id space', async () => {
    const prefix = freshPrefix();
    const a = await startedBus(prefix);
    const b = await startedBus(prefix);
    const seenByA: EventRecord[] = [];
    const seenByB: EventRecord[] = [];
    await a.subscribe('doc:1', (event) => seenByA.push(event));
    await b.subscribe('doc:1', (event) => seenByB.push(event));
    const fromA = Promise.all(Array.from({ length: 100 }, (_, index) => a.publish(draft('doc:1', `a${index}`))));
    const fromB = Promise.all(Array.from({ length: 100 }, (_, index) => b.publish(draft('doc:1', `b${index}`))));
    const published = [...(await fromA), ...(await fromB)];
    const ids = published.map((event) => event.id).sort((x, y) => x - y);
    expect(new Set(ids).size).toBe(200);
    await waitUntil(() => seenByA.length === 200 && seenByB.length === 200);
    // Both instances see the same global order, which is ascending.
    expect(seenByA.map((event) => event.id)).toEqual(ids);
    expect(seenByB.map((event) => event.id)).toEqual(ids);
    expect((await a.read(['doc:1'], 0, 1_000)).events.map((event) => event.id)).toEqual(ids.slice(-100));
    expect(await a.headId()).toBe(ids.at(-1));
    expect(await b.headId()).toBe(ids.at(-1));
  });

  it('keeps ids increasing after Redis loses its data, and reports the gap to old readers', async () => {
    const prefix = freshPrefix();
    const bus = await startedBus(prefix);
    const first = await bus.publish(draft('t'));
    const second = await bus.publish(draft('t'));
    expect(await deleteKeys(prefix)).toBeGreaterThan(0);

    // A reader resuming before anything new is published: gap, and the head has not gone back.
    expect(await bus.headId()).toBeGreaterThanOrEqual(second.id);
    const early = await bus.read(['t', 'other'], first.id, 100);
    expect(early.gapTopics).toEqual(['t', 'other']);
    expect(early.events).toEqual([]);

    const third = await bus.publish(draft('t'));
    expect(third.id).toBeGreaterThan(second.id);
    const read = await bus.read(['t'], second.id, 100);
    expect(read.gapTopics).toEqual(['t']);
    expect(read.events).toEqual([third]);
    // Resuming from an id issued after the loss is exact again.
    expect(await bus.read(['t'], third.id, 100)).toMatchObject({ gapTopics: [], events: [] });

    // A new instance (restart seeded from the store's highest id) keeps going up too.
    const restarted = createBus(prefix);
    await restarted.start({ idFloor: third.id, coveredFrom: third.id });
    expect((await restarted.publish(draft('t'))).id).toBeGreaterThan(third.id);
  });

  it('keeps ids increasing after data loss even when they ran ahead of the clock', async () => {
    const prefix = freshPrefix();
    const bus = createBus(prefix);
    const future = (Date.now() + 86_400_000) * 1000;
    await bus.start({ idFloor: future, coveredFrom: future });
    const before = await bus.publish(draft('t'));
    await deleteKeys(prefix);
    const after = await bus.publish(draft('t'));
    expect(after.id).toBeGreaterThan(before.id);
    expect((await bus.read(['t'], before.id, 10)).gapTopics).toEqual(['t']);
  });

  it('a fresh Redis at start covers from coveredFrom; an existing one keeps its epoch', async () => {
    const prefix = freshPrefix();
    const floor = Date.now() * 1000;
    const first = createBus(prefix);
    await first.start({ idFloor: floor, coveredFrom: floor + 500 });
    expect((await first.read(['t'], floor + 499, 10)).gapTopics).toEqual(['t']);
    expect((await first.read(['t'], floor + 500, 10)).gapTopics).toEqual([]);
    const second = createBus(prefix);
    await second.start({ idFloor: floor, coveredFrom: floor + 10_000 });
    expect((await second.read(['t'], floor + 500, 10)).gapTopics).toEqual([]);
  });

  it('loses nothing when the subscriber connection is killed (CLIENT KILL)', async () => {
    const prefix = freshPrefix();
    // The killed connection comes back after 300 ms, so events really are published while it is down.
    const redisOptions: RedisOptions = { retryStrategy: () => 300 };
    const name = `${prefix}-sub-side`;
    const subscriberSide = await startedBus(prefix, { connectionName: name, redisOptions });
    const publisherSide = await startedBus(prefix);
    const received: number[] = [];
    const other: number[] = [];
    await subscriberSide.subscribe('doc:1', (event) => received.push(event.id));
    await subscriberSide.subscribe('doc:2', (event) => other.push(event.id));
    const published: number[] = [];
    const publishedOther: number[] = [];
    const publish = async (count: number) => {
      for (let index = 0; index < count; index++) {
        published.push((await publisherSide.publish(draft('doc:1'))).id);
        if (index % 2 === 0) publishedOther.push((await publisherSide.publish(draft('doc:2'))).id);
      }
    };

    await publish(5);
    await waitUntil(() => received.length === 5);
    await killSubscriber(name);
    await publish(10);
    // Down for 300 ms: nothing new can have arrived yet, and the bus says it is degraded.
    expect(received).toHaveLength(5);
    expect((await subscriberSide.health()).status).toBe('degraded');
    await waitUntil(() => received.length === 15 && other.length === publishedOther.length);
    expect((await subscriberSide.health()).status).toBe('up');
    await publish(5);
    await waitUntil(() => received.length === 20);
    await sleep(50);
    expect(received).toEqual(published);
    expect(other).toEqual(publishedOther);
  });

  it('tells a loss of the latest writes (a failover to a replica behind): a gap for resumes from before, every live topic resumes, no id reused', async () => {
    const prefix = freshPrefix();
    const keys = redisBusKeys(prefix);
    const gapsOnA = vi.fn();
    const gapsOnB = vi.fn();
    const a = await startedBus(prefix, { onLiveGap: gapsOnA });
    const b = await startedBus(prefix, { onLiveGap: gapsOnB });
    await a.subscribe('doc:r', () => undefined);
    await b.subscribe('doc:other', () => undefined);
    const kept = await a.publish(draft('doc:q'));
    const counterBefore = await admin.get(keys.seq);
    const lost = await a.publish(draft('doc:q'));
    // What a replica that missed the last write holds: the counter and the log from before it
    // (the epoch, older, survives).
    await admin.set(keys.seq, counterBefore ?? '0');
    await admin.xdel(`${keys.logPrefix}doc:q`, `${lost.id}-0`);
    // B never saw the lost event: its reads cannot tell; A's next script does, and says so.
    expect((await b.read(['doc:q'], kept.id, 10)).gapTopics).toEqual([]);
    const read = await a.read(['doc:q'], kept.id, 10);
    expect(read.gapTopics).toEqual(['doc:q']);
    expect((await b.read(['doc:q'], kept.id, 10)).gapTopics).toEqual(['doc:q']);
    await waitUntil(() => gapsOnA.mock.calls.length > 0 && gapsOnB.mock.calls.length > 0);
    expect(gapsOnA).toHaveBeenCalledWith('doc:r');
    expect(gapsOnB).toHaveBeenCalledWith('doc:other');
    const next = await b.publish(draft('doc:q'));
    expect(next.id).toBeGreaterThan(lost.id);
    expect((await b.read(['doc:q'], next.id - 1, 10)).events.map((event) => event.id)).toEqual([next.id]);
  });

  it('hands out what several topics missed during a blip in one id order across them (a stream spans topics)', async () => {
    const prefix = freshPrefix();
    const name = `${prefix}-order`;
    const subscriberSide = await startedBus(prefix, {
      connectionName: name,
      redisOptions: { retryStrategy: () => 300 },
    });
    const publisherSide = await startedBus(prefix);
    // One listener order over all topics, as a stream subscribed to all of them sees it.
    const seen: number[] = [];
    const topics = ['doc:a', 'doc:b', 'doc:c'];
    for (const topic of topics) await subscriberSide.subscribe(topic, (event) => seen.push(event.id));
    const published: number[] = [];
    await killSubscriber(name);
    for (let index = 0; index < 30; index++) {
      published.push((await publisherSide.publish(draft(topics[index % topics.length] ?? 'doc:a'))).id);
    }
    await waitUntil(() => seen.length === published.length);
    expect(seen).toEqual(published);
  });

  it('recovers from a blip that happens while events stream in, without duplicates', async () => {
    const prefix = freshPrefix();
    const name = `${prefix}-busy`;
    // The log must hold everything published during the blips (a few hundred events), else it is a gap.
    const limits = { maxEvents: 100_000, maxAgeMs: 3_600_000 };
    const onLiveGap = vi.fn();
    const subscriberSide = await startedBus(prefix, {
      connectionName: name,
      redisOptions: { retryStrategy: () => 20 },
      limits,
      onLiveGap,
    });
    const publisherSide = await startedBus(prefix, { limits });
    const received: number[] = [];
    await subscriberSide.subscribe('t', (event) => received.push(event.id));
    const published: number[] = [];
    let stop = false;
    const stream = (async () => {
      while (!stop) published.push((await publisherSide.publish(draft('t'))).id);
    })();
    await sleep(30);
    await killSubscriber(name);
    await sleep(100);
    await killSubscriber(name);
    await sleep(100);
    stop = true;
    await stream;
    await waitUntil(() => received.length >= published.length);
    await sleep(50);
    expect(received).toEqual(published);
    expect(onLiveGap).not.toHaveBeenCalled();
  });

  it('reports a live gap when the log was trimmed past what a subscriber had seen', async () => {
    const prefix = freshPrefix();
    const name = `${prefix}-gap`;
    const onLiveGap = vi.fn();
    const subscriberSide = await startedBus(prefix, {
      connectionName: name,
      redisOptions: { retryStrategy: () => 300 },
      limits: { maxEvents: 3, maxAgeMs: 3_600_000 },
      onLiveGap,
    });
    const publisherSide = await startedBus(prefix, { limits: { maxEvents: 3, maxAgeMs: 3_600_000 } });
    const received: number[] = [];
    await subscriberSide.subscribe('t', (event) => received.push(event.id));
    await publisherSide.publish(draft('t'));
    await waitUntil(() => received.length === 1);
    await killSubscriber(name);
    const missed: number[] = [];
    for (let index = 0; index < 6; index++) missed.push((await publisherSide.publish(draft('t'))).id);
    await waitUntil(() => onLiveGap.mock.calls.length === 1);
    expect(onLiveGap).toHaveBeenCalledWith('t');
    await waitUntil(() => received.length === 4);
    expect(received.slice(1)).toEqual(missed.slice(3));
  });

  it('holds one Redis subscription per topic and drops it with the last subscriber', async () => {
    const prefix = freshPrefix();
    const bus = await startedBus(prefix);
    const channel = `${redisBusKeys(prefix).channelPrefix}doc:1`;
    const subscribers = async () => Number((await admin.pubsub('NUMSUB', channel))[1]);
    const received: EventRecord[] = [];
    const listener = (event: EventRecord) => received.push(event);
    const [first, second] = await Promise.all([bus.subscribe('doc:1', listener), bus.subscribe('doc:1', listener)]);
    expect(await subscribers()).toBe(1);
    await bus.publish(draft('doc:1'));
    await waitUntil(() => received.length === 2);
    await first();
    await first(); // idempotent
    expect(await subscribers()).toBe(1);
    await bus.publish(draft('doc:1'));
    await waitUntil(() => received.length === 3);
    await sleep(30);
    expect(received).toHaveLength(3);
    await second();
    expect(await subscribers()).toBe(0);

    // Unsubscribe and subscribe again at once: the later SUBSCRIBE wins.
    const again = await bus.subscribe('doc:1', listener);
    const pending = again();
    const third = await bus.subscribe('doc:1', listener);
    await pending;
    expect(await subscribers()).toBe(1);
    await bus.publish(draft('doc:1'));
    await waitUntil(() => received.length === 4);
    await third();
    expect(await subscribers()).toBe(0);
  });

  it('trims by age on publish and on read, and reports the gap', async () => {
    const bus = await startedBus(freshPrefix(), { limits: { maxEvents: 100, maxAgeMs: 150 } });
    const old = await bus.publish(draft('t'));
    await sleep(250);
    const beforeTrim = await bus.read(['t'], 0, 10);
    expect(beforeTrim.events).toEqual([]);
    expect(beforeTrim.gapTopics).toEqual(['t']);
    const fresh = await bus.publish(draft('t'));
    const read = await bus.read(['t'], 0, 10);
    expect(read.events).toEqual([fresh]);
    expect(read.gapTopics).toEqual(['t']);
    expect(read.oldestId).toBe(fresh.id);
    expect((await bus.read(['t'], old.id, 10)).gapTopics).toEqual([]);
  });

  it('sweeps idle topics: deletes their logs, keeps their watermark, folds the excess into a floor', async () => {
    const prefix = freshPrefix();
    const keys = redisBusKeys(prefix);
    const bus = await startedBus(prefix, { limits: { maxEvents: 100, maxAgeMs: 100 }, maxIdleTopics: 2 });
    const last: number[] = [];
    for (const topic of ['a', 'b', 'c']) {
      await bus.publish(draft(topic));
      last.push((await bus.publish(draft(topic))).id);
    }
    await sleep(200);
    await bus.sweepIdleTopics();
    expect(await admin.exists(`${keys.logPrefix}a`, `${keys.logPrefix}b`, `${keys.logPrefix}c`)).toBe(0);
    expect(await admin.zrange(keys.idle, 0, -1)).toEqual(['b', 'c']);
    expect(await admin.get(keys.dropped)).toBe(String(last[0]));
    expect(await admin.hlen(keys.trim)).toBe(0);
    expect(await admin.zcard(keys.active)).toBe(0);
    const [a, b, c] = last as [number, number, number];
    // Exact watermarks for the idle topics, the fold floor for the rest (even unknown ones).
    expect((await bus.read(['b'], b, 10)).gapTopics).toEqual([]);
    expect((await bus.read(['b', 'c'], b - 1, 10)).gapTopics).toEqual(['b', 'c']);
    expect((await bus.read(['b', 'c'], b, 10)).gapTopics).toEqual(['c']);
    expect((await bus.read(['a', 'never'], a, 10)).gapTopics).toEqual([]);
    expect((await bus.read(['a', 'never'], a - 1, 10)).gapTopics).toEqual(['a', 'never']);
    expect((await bus.read(['c'], c, 10)).gapTopics).toEqual([]);
    // A topic published again inherits its watermark.
    const back = await bus.publish(draft('b'));
    const read = await bus.read(['b'], b - 1, 10);
    expect(read).toMatchObject({ gapTopics: ['b'], events: [back] });
    expect(await admin.zrange(keys.idle, 0, -1)).toEqual(['c']);
  });

  it('keeps the log readable below a gap mark, and folds the mark into the watermark once the log ages out', async () => {
    const prefix = freshPrefix();
    const keys = redisBusKeys(prefix);
    const bus = await startedBus(prefix, { limits: { maxEvents: 100, maxAgeMs: 100 } });
    const first = await bus.publish(draft('g'));
    const second = await bus.publish(draft('g'));
    // The mark a rejoin sets after an outage in which an instance served 'g' alone (a Redis id, so
    // that a read from it is not taken for a resume from an island's id).
    const mark = second.id + 2 * ID_SLOTS;
    await admin.hset(keys.gaps, 'g', String(mark));
    expect(await bus.read(['g'], first.id, 10)).toMatchObject({ gapTopics: ['g'], events: [second] });
    expect((await bus.read(['g'], mark, 10)).gapTopics).toEqual([]);
    await sleep(200);
    await bus.sweepIdleTopics();
    expect(await admin.exists(`${keys.logPrefix}g`, keys.gaps)).toBe(0);
    expect(await admin.zscore(keys.idle, 'g')).toBe(String(mark));
    expect((await bus.read(['g'], second.id, 10)).gapTopics).toEqual(['g']);
    expect((await bus.read(['g'], mark, 10)).gapTopics).toEqual([]);
  });

  it('reports down before start and after close, and rejects subscriptions once closed', async () => {
    const bus = createBus(freshPrefix());
    expect((await bus.health()).status).toBe('down');
    await bus.start({ idFloor: 0, coveredFrom: 0 });
    expect((await bus.health()).status).toBe('up');
    await bus.close();
    expect(await bus.health()).toEqual({ status: 'down', detail: 'closed' });
    await expect(bus.subscribe('t', () => undefined)).rejects.toThrow(/closed/);
  });

  it('fails to start, loudly, when Redis is unreachable', async () => {
    const bus = new RedisEventBus({
      url: 'redis://127.0.0.1:1',
      limits: { maxEvents: 1, maxAgeMs: 1_000 },
      redisOptions: { retryStrategy: () => null },
    });
    await expect(bus.start({ idFloor: 0, coveredFrom: 0 })).rejects.toThrow();
    await bus.close();
  });

  it('is what createEventBus returns when REDIS_URL is set', async () => {
    const memory = createEventBus({ redis: undefined, hotLogMaxEvents: 10, hotLogMaxAgeMs: 1_000 });
    expect(memory.kind).toBe('memory');
    await memory.close();
    const prefix = freshPrefix();
    const redis = createEventBus({
      redis: TEST_REDIS_URL,
      hotLogMaxEvents: 10,
      hotLogMaxAgeMs: 60_000,
      redisKeyPrefix: prefix,
    });
    expect(redis.kind).toBe('redis');
    await redis.start({ idFloor: 0, coveredFrom: 0 });
    await redis.publish(draft('t'));
    expect(await keysOf(prefix)).toContain(`{${prefix}}:log:t`);
    await redis.close();
  });
});
