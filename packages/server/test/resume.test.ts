import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { EventBus } from '../src/adapters/bus/event-bus.js';
import { MemoryEventBus } from '../src/adapters/bus/memory-event-bus.js';
import type { EventStore, KeyedEventRecord, StoreReadQuery } from '../src/adapters/store/event-store.js';
import { PgliteEventStore } from '../src/adapters/store/pglite-event-store.js';
import { beforeRead, withReadLatency } from './helpers/latency-bus.js';
import { openRawStream } from './helpers/raw-stream.js';
import { randomInt, seededRandom } from './helpers/random.js';
import { ofType, openStream, published, type StreamReader } from './helpers/sse-reader.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

interface Trial {
  server: TestApp;
  token: string;
  topics: string[];
  other: string;
  expected: number[];
  received: number[];
  streams: StreamReader[];
}

async function publishOn(trial: Trial, topic: string, critical = false): Promise<void> {
  const record = await trial.server.app.realtime.internals.publisher.publish({
    topic,
    type: 'notification',
    payload: { title: `on ${topic}`, level: 'info' },
    critical,
  });
  if (topic !== trial.other) trial.expected.push(record.id);
}

/** Opens a stream resuming from the last id this trial received; waits for the resume to finish. */
async function reconnect(trial: Trial): Promise<StreamReader> {
  const lastEventId = trial.received.at(-1);
  const stream = await openStream(trial.server.url, {
    token: trial.token,
    query: { topics: trial.topics.join(',') },
    ...(lastEventId === undefined ? {} : { lastEventId: String(lastEventId) }),
  });
  expect(stream.status).toBe(200);
  await stream.waitFor((events) =>
    lastEventId === undefined
      ? events.some((event) => event.event === 'connection.established')
      : events.some((event) => event.event === 'stream.resumed'),
  );
  trial.streams.push(stream);
  return stream;
}

function collect(trial: Trial, stream: StreamReader): void {
  for (const event of published(stream.events)) trial.received.push(Number(event.id));
}

async function settle(trial: Trial, stream: StreamReader): Promise<void> {
  const last = trial.expected.reduce((max, id) => Math.max(max, id), 0);
  const before = trial.received.at(-1) ?? 0;
  if (last > before) await stream.waitFor((events) => published(events).some((event) => Number(event.id) === last));
  stream.close();
  await stream.ended;
  collect(trial, stream);
}

describe('resume without loss', () => {
  let server: TestApp;
  beforeAll(async () => {
    server = await startTestApp({ HOT_LOG_MAX_EVENTS: '100000', MAX_CONNECTIONS_PER_USER: '64' });
  });
  afterAll(async () => {
    await server.close();
  });

  it('delivers exactly the published sequence over random publishes, disconnects and reconnects (200 seeds)', async () => {
    for (let seed = 1; seed <= 200; seed++) {
      const random = seededRandom(seed);
      const topics = [`doc:r${seed}a`, `doc:r${seed}b`];
      const trial: Trial = {
        server,
        token: await server.token(`r${seed}`, { topics }),
        topics,
        other: `doc:r${seed}z`,
        expected: [],
        received: [],
        streams: [],
      };
      let stream = await reconnect(trial);
      // An anchor event gives the client a resume point before the first disconnect.
      await publishOn(trial, topics[0] ?? '');
      await stream.waitFor((events) => published(events).length === 1);
      const operations = randomInt(random, 6, 16);
      for (let step = 0; step < operations; step++) {
        const choice = random();
        const burst = Array.from({ length: randomInt(random, 1, 5) }, () =>
          random() < 0.2 ? trial.other : (topics[randomInt(random, 0, 1)] ?? trial.other),
        );
        if (choice < 0.45) {
          await Promise.all(burst.map((topic) => publishOn(trial, topic, random() < 0.3)));
        } else if (choice < 0.75) {
          // Disconnect with publishes in flight, then resume while they land.
          const inFlight = Promise.all(burst.map((topic) => publishOn(trial, topic)));
          stream.close();
          await stream.ended;
          collect(trial, stream);
          stream = await reconnect(trial);
          await inFlight;
        } else {
          stream.close();
          await stream.ended;
          collect(trial, stream);
          await Promise.all(burst.map((topic) => publishOn(trial, topic)));
          stream = await reconnect(trial);
        }
      }
      await settle(trial, stream);
      trial.expected.sort((a, b) => a - b);
      expect(trial.received, `seed ${seed}`).toEqual(trial.expected);
      for (const resumed of trial.streams.flatMap((s) => ofType<{ complete: boolean }>(s.events, 'stream.resumed'))) {
        expect(resumed.complete, `seed ${seed}`).toBe(true);
      }
    }
  }, 300_000);
});

describe('the replay/live seam under concurrent publishing', () => {
  let server: TestApp;
  beforeAll(async () => {
    // A tiny hot log and only critical events: every resume goes through the (slower, async)
    // store read while the publisher keeps going, which is the widest race window there is.
    server = await startTestApp(
      { HOT_LOG_MAX_EVENTS: '5', MAX_CONNECTIONS_PER_USER: '64' },
      { bus: withReadLatency(new MemoryEventBus({ maxEvents: 5, maxAgeMs: 3_600_000 }), 15) },
    );
  });
  afterAll(async () => {
    await server.close();
  });

  it('has no gap and no duplicate when events land during the replay', async () => {
    const topics = ['doc:race'];
    const trial: Trial = {
      server,
      token: await server.token('racer', { topics }),
      topics,
      other: 'doc:none',
      expected: [],
      received: [],
      streams: [],
    };
    let stream = await reconnect(trial);
    await publishOn(trial, 'doc:race', true);
    await stream.waitFor((events) => published(events).length === 1);
    let publishing = true;
    const publisher = (async () => {
      for (let count = 0; publishing && count < 3_000; count++) {
        await publishOn(trial, 'doc:race', true);
        // PGlite answers on microtasks: yield to I/O so publishes interleave with the resumes.
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    for (let round = 0; round < 40; round++) {
      await stream.waitFor((events) => events.some((event) => event.event === 'stream.resumed' || event.id), 10_000);
      stream.close();
      await stream.ended;
      collect(trial, stream);
      stream = await reconnect(trial);
    }
    publishing = false;
    await publisher;
    await settle(trial, stream);
    expect(trial.expected.length).toBeGreaterThan(40);
    expect(new Set(trial.received).size).toBe(trial.received.length);
    expect(trial.received).toEqual(trial.expected);
    const resets = trial.streams.flatMap((s) => ofType<{ reason: string }>(s.events, 'stream.reset'));
    expect(resets.length).toBeGreaterThan(0);
    expect(resets.every((reset) => reset.reason === 'gap')).toBe(true);
  }, 120_000);
});

describe('a resume larger than the slow-consumer bound', () => {
  const maxBufferedBytes = 64 * 1024;
  let server: TestApp;
  beforeAll(async () => {
    server = await startTestApp({ MAX_BUFFERED_BYTES: String(maxBufferedBytes), HEARTBEAT_MS: '600000' });
  });
  afterAll(async () => {
    await server.close();
  });

  it('streams a backlog 16 times MAX_BUFFERED_BYTES at the client pace, every event, then goes live', async () => {
    const topics = ['doc:backlog'];
    const token = await server.token('backlog', { topics });
    const body = 'x'.repeat(16 * 1024);
    const ids: string[] = [];
    for (let index = 0; index < 64; index++) {
      const { status, id } = await server.publish({
        topic: 'doc:backlog',
        payload: { title: `big ${index}`, body, level: 'info' },
      });
      expect(status).toBe(202);
      ids.push(id);
    }
    const stream = await openStream(server.url, { token, query: { topics: topics.join(',') }, lastEventId: ids[0] });
    await stream.waitFor((events) => events.some((event) => event.event === 'stream.resumed'));
    expect(published(stream.events).map((event) => event.id)).toEqual(ids.slice(1));
    expect(ofType(stream.events, 'stream.resumed')).toEqual([{ replayed: ids.length - 1, complete: true }]);
    const { id: live } = await server.publish({ topic: 'doc:backlog' });
    await stream.waitFor((events) => published(events).some((event) => event.id === live));
    stream.close();
    await stream.ended;
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).not.toMatch(/sse_disconnects_total\{reason="slow_consumer"\} [1-9]/);
  }, 60_000);
});

describe('a topic resync while a resume is in progress', () => {
  let server: TestApp;
  /** Set when the test resyncs: reads that start afterwards report a gap, as Redis's rejoin marks do. */
  let marked = false;
  /** Called when a read starts (a resume's headers wait for its replay, so they cannot tell). */
  let onRead: () => void = () => undefined;
  beforeAll(async () => {
    const bus = new MemoryEventBus({ maxEvents: 1_000, maxAgeMs: 3_600_000 });
    const marking: EventBus = new Proxy(bus, {
      get(target, property, receiver) {
        if (property === 'read') {
          return async (...args: Parameters<EventBus['read']>) => {
            const gap = marked;
            onRead();
            // Long enough for the test to resync while the first read of the resume is under way.
            await new Promise((resolve) => setTimeout(resolve, 150));
            const read = await target.read(...args);
            return gap ? { ...read, gapTopics: [...args[0]] } : read;
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    server = await startTestApp({}, { bus: marking });
  });
  afterAll(async () => {
    await server.close();
  });

  it('completes the resume, re-planned from where it got to (the gap told in-band), instead of ending the stream', async () => {
    const topic = 'doc:resync';
    const token = await server.token('resyncer', { topics: [topic] });
    const ids: string[] = [];
    for (let index = 0; index < 3; index++) ids.push((await server.publish({ topic })).id);
    const reading = new Promise<void>((resolve) => (onRead = resolve));
    const opening = openStream(server.url, { token, query: { topics: topic }, lastEventId: ids[0] });
    await reading;
    marked = true;
    expect(server.app.realtime.internals.connections.resyncTopic(topic)).toBe(0);
    const stream = await opening;
    await stream.waitFor((events) => events.some((event) => event.event === 'stream.resumed'));
    expect(published(stream.events).map((event) => event.id)).toEqual(ids.slice(1));
    expect(ofType(stream.events, 'stream.reset')).toEqual([expect.objectContaining({ reason: 'gap' })]);
    expect(ofType(stream.events, 'stream.resumed')).toEqual([{ replayed: 2, complete: false }]);
    const { id: live } = await server.publish({ topic });
    await stream.waitFor((events) => published(events).some((event) => event.id === live));
    stream.close();
    await stream.ended;
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).not.toMatch(/sse_disconnects_total\{reason="resync"\}/);
  });
});

/** A point a store call waits at until the test lets it go on. */
interface Hold {
  /** Resolves once a call has arrived and is waiting. */
  reached: Promise<void>;
  release(): void;
}

function hold(): Hold & { arrive(): Promise<void> } {
  let arrived: () => void = () => undefined;
  let release: () => void = () => undefined;
  const reached = new Promise<void>((resolve) => (arrived = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  return {
    reached,
    release,
    arrive: () => {
      arrived();
      return released;
    },
  };
}

describe('a gap resume while critical events are being stored', () => {
  const topic = 'doc:pending';
  let server: TestApp;
  /** The next store read of the topic waits here (armed by the test). */
  let readHold: ReturnType<typeof hold> | undefined;
  /** The next confirmation (the id given to a pending row) of the topic waits here. */
  let confirmHold: ReturnType<typeof hold> | undefined;
  beforeAll(async () => {
    const store = new PgliteEventStore();
    const holding: EventStore = new Proxy(store, {
      get(target, property, receiver) {
        if (property === 'readAfter') {
          return async (query: StoreReadQuery) => {
            const waiting = query.topics.includes(topic) ? readHold : undefined;
            if (waiting) readHold = undefined;
            await waiting?.arrive();
            return target.readAfter(query);
          };
        }
        if (property === 'confirm') {
          return async (record: KeyedEventRecord) => {
            const waiting = record.topic === topic ? confirmHold : undefined;
            if (waiting) confirmHold = undefined;
            await waiting?.arrive();
            return target.confirm(record);
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    // Two events per topic in the hot log: a resume from the first of four is a gap.
    server = await startTestApp({ HOT_LOG_MAX_EVENTS: '2' }, { store: holding });
  });
  afterAll(async () => {
    await server.close();
  });

  it('delivers a critical event published during the replay whose id the store did not have yet, even when a later one is stored', async () => {
    const token = await server.token('pending', { topics: [topic] });
    const ids: string[] = [];
    for (let index = 0; index < 4; index++) ids.push((await server.publish({ topic })).id);
    const storeRead = hold();
    readHold = storeRead;
    const stream = await openStream(server.url, { token, query: { topics: topic }, lastEventId: ids[0] });
    // The resume has read the hot log and waits for the store. Meanwhile: one critical event on the
    // bus (live, queued behind the replay) whose row has no id yet, and one stored whole after it.
    await storeRead.reached;
    const firstConfirm = hold();
    confirmHold = firstConfirm;
    const first = server.publish({ topic, critical: true });
    await firstConfirm.reached;
    const second = await server.publish({ topic, critical: true });
    expect(second.status).toBe(201);
    storeRead.release();
    await stream.waitFor((events) => events.some((event) => event.event === 'stream.resumed'));
    firstConfirm.release();
    const { id: firstId } = await first;
    await stream.waitFor((events) => published(events).some((event) => event.id === second.id));
    expect(published(stream.events).map((event) => event.id)).toEqual([ids[2], ids[3], firstId, second.id]);
    expect(ofType(stream.events, 'stream.reset')).toEqual([expect.objectContaining({ reason: 'gap' })]);
    stream.close();
    await stream.ended;
  });
});

describe("a resume's opening", () => {
  let server: TestApp;
  /** Each hot-log read waits for this before it runs (a remote bus's round trip, or a gate). */
  let readGate: () => Promise<void> = () => Promise.resolve();
  beforeAll(async () => {
    const bus = new MemoryEventBus({ maxEvents: 1_000, maxAgeMs: 3_600_000 });
    server = await startTestApp({}, { bus: beforeRead(bus, () => readGate()) });
  });
  afterAll(async () => {
    await server.close();
  });

  it('leaves in one write: headers, connection.established, the replay and stream.resumed', async () => {
    const topic = 'doc:opening';
    const token = await server.token('opener', { topics: [topic] });
    const ids: string[] = [];
    for (let index = 0; index < 3; index++) ids.push((await server.publish({ topic })).id);
    // A read that takes a while, as Redis's does: without the hold the headers would leave first.
    readGate = () => new Promise((resolve) => setTimeout(resolve, 30));
    const stream = openRawStream(Number(new URL(server.url).port), `/api/sse/stream?topics=${topic}`, token, {
      lastEventId: ids[0],
    });
    const first = await new Promise<string>((resolve) => stream.socket.once('data', (chunk) => resolve(String(chunk))));
    expect(first).toMatch(/^HTTP\/1\.1 200 /);
    expect(first).toContain('event: connection.established');
    expect(first).toContain(`id: ${ids[2]}`);
    expect(first).toContain('event: stream.resumed');
    expect(first.indexOf('event: connection.established')).toBeLessThan(first.indexOf(`id: ${ids[1]}`));
    stream.socket.destroy();
    await stream.closed;
  });

  it('sends its headers and connection.established before a replay that is slow to plan', async () => {
    const topic = 'doc:slow-plan';
    const token = await server.token('slow-opener', { topics: [topic] });
    const { id } = await server.publish({ topic });
    let open: () => void = () => undefined;
    const opened = new Promise<void>((resolve) => (open = resolve));
    readGate = () => opened;
    const stream = openRawStream(Number(new URL(server.url).port), `/api/sse/stream?topics=${topic}`, token, {
      lastEventId: id,
    });
    // The read is still held: only the sweep's end of a long hold can let these out.
    await stream.established;
    expect(stream.eventNames).not.toContain('stream.resumed');
    const { id: later } = await server.publish({ topic });
    open();
    await vi.waitFor(() => expect(stream.eventNames).toContain('stream.resumed'));
    await vi.waitFor(() => expect(stream.ids).toEqual([later]));
    stream.socket.destroy();
    await stream.closed;
  });
});
