import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventRecord } from '../../core/event-record.js';
import type { EventStore } from './event-store.js';

/** How a suite obtains stores of the adapter under test. */
export interface EventStoreContractHooks {
  /** A fresh, initialised store with no events and no recorded head. */
  create: () => Promise<EventStore>;
  /** Runs after each test, once the store is closed (drop schemas, remove folders). */
  cleanup?: () => Promise<void>;
  /**
   * A new store over the same data as the last `create()`, initialised; when given, the suite
   * checks that events and the recorded head survive close and reopen.
   */
  reopen?: () => Promise<EventStore>;
}

const T0 = Date.parse('2025-01-01T00:00:00.000Z');
/** Just below Number.MAX_SAFE_INTEGER's neighbourhood of today's ids (~1.8e15, time-derived). */
const BIG_ID = 1_800_000_000_000_123;

/** A critical `task.progress` event at `T0 + id` ms unless overridden. */
export function storedEvent(id: number, overrides: Partial<EventRecord> = {}): EventRecord {
  return {
    id,
    topic: 'task:1',
    type: 'task.progress',
    ts: new Date(T0 + (id % 1_000_000)).toISOString(),
    payload: { n: id },
    critical: true,
    ...overrides,
  };
}

/**
 * The behaviour every {@link EventStore} adapter must show; each adapter's test file calls this,
 * so PGlite and PostgreSQL are held to the same suite.
 */
export function describeEventStoreContract(name: string, hooks: EventStoreContractHooks): void {
  describe(`EventStore contract: ${name}`, () => {
    let store: EventStore;
    const open: EventStore[] = [];
    const track = (opened: EventStore): EventStore => {
      open.push(opened);
      return opened;
    };

    beforeEach(async () => {
      store = track(await hooks.create());
    });

    afterEach(async () => {
      await Promise.all(open.splice(0).map((opened) => opened.close()));
      await hooks.cleanup?.();
    });

    const appendAll = async (events: EventRecord[]): Promise<void> => {
      for (const event of events) await store.append(event);
    };

    it('reads events across topics in ascending id order, whatever the append order', async () => {
      await appendAll([
        storedEvent(3, { topic: 'b' }),
        storedEvent(1, { topic: 'a' }),
        storedEvent(2, { topic: 'b' }),
        storedEvent(4, { topic: 'a' }),
      ]);
      const events = await store.readAfter({ topics: ['a', 'b'], after: 0, limit: 10 });
      expect(events.map((e) => [e.id, e.topic])).toEqual([
        [1, 'a'],
        [2, 'b'],
        [3, 'b'],
        [4, 'a'],
      ]);
      expect(events[0]).toEqual(storedEvent(1, { topic: 'a' }));
    });

    it('treats after and before as exclusive bounds and returns the oldest first up to limit', async () => {
      await appendAll([1, 2, 3, 4, 5, 6].map((id) => storedEvent(id)));
      const ids = async (query: { after: number; before?: number; limit: number }): Promise<number[]> =>
        (await store.readAfter({ topics: ['task:1'], ...query })).map((e) => e.id);
      expect(await ids({ after: 2, limit: 10 })).toEqual([3, 4, 5, 6]);
      expect(await ids({ after: 2, before: 5, limit: 10 })).toEqual([3, 4]);
      expect(await ids({ after: 0, limit: 2 })).toEqual([1, 2]);
      expect(await ids({ after: 1, before: 6, limit: 3 })).toEqual([2, 3, 4]);
      expect(await ids({ after: 6, limit: 10 })).toEqual([]);
      expect(await ids({ after: 3, before: 4, limit: 10 })).toEqual([]);
      expect(await ids({ after: 0, limit: 0 })).toEqual([]);
    });

    it('returns only the requested topics', async () => {
      await appendAll([
        storedEvent(1, { topic: 'user:1' }),
        storedEvent(2, { topic: 'user:2' }),
        storedEvent(3, { topic: 'task:9' }),
        storedEvent(4, { topic: 'user:1' }),
      ]);
      const topicsOf = async (topics: string[]): Promise<number[]> =>
        (await store.readAfter({ topics, after: 0, limit: 10 })).map((e) => e.id);
      expect(await topicsOf(['user:1'])).toEqual([1, 4]);
      expect(await topicsOf(['user:1', 'task:9'])).toEqual([1, 3, 4]);
      expect(await topicsOf(['nobody'])).toEqual([]);
      expect(await topicsOf([])).toEqual([]);
    });

    it('is idempotent on id: appending the same id twice keeps the first row only', async () => {
      await store.append(storedEvent(7, { payload: { first: true } }));
      await store.append(storedEvent(7, { payload: { first: false } }));
      const events = await store.readAfter({ topics: ['task:1'], after: 0, limit: 10 });
      expect(events).toEqual([storedEvent(7, { payload: { first: true } })]);
    });

    it('round-trips payload JSON: unicode, nesting, empty objects, arrays and scalars', async () => {
      const payloads: unknown[] = [
        { text: 'héllo — 世界 🚀 \u2028 "quoted" \\ back\nslash', rtl: 'مرحبا' },
        { a: { b: { c: [1, 2.5, -3e-7, { d: null, e: false }] } }, list: [[], {}] },
        {},
        [],
        'a plain string',
        42,
        true,
        null,
        { big: Number.MAX_SAFE_INTEGER, tiny: 0.1 + 0.2 },
        { nul: 'before\u0000after', control: '\u0007\u001b' },
      ];
      await appendAll(payloads.map((payload, index) => storedEvent(index + 1, { payload })));
      const events = await store.readAfter({ topics: ['task:1'], after: 0, limit: 20 });
      expect(events.map((e) => e.payload)).toEqual(payloads);
      // Byte for byte as published: key order survives too.
      expect(Object.keys(events[1]?.payload as object)).toEqual(['a', 'list']);
    });

    it('group-commits concurrent appends: every one stored exactly, duplicates kept once, each acknowledged', async () => {
      const payloads: unknown[] = [{ text: 'héllo 🚀', nul: 'a\u0000b' }, undefined, [1, { x: null }], 'plain'];
      const events = Array.from({ length: 300 }, (_, index) =>
        storedEvent(index + 1, { payload: payloads[index % payloads.length], critical: index % 2 === 0 }),
      );
      // All at once, plus a duplicate of an id within the burst: the first one wins.
      const results = await Promise.allSettled([
        ...events.map((event) => store.append(event)),
        store.append(storedEvent(5, { payload: 'late duplicate' })),
      ]);
      expect(results.every((result) => result.status === 'fulfilled')).toBe(true);
      const read = await store.readAfter({ topics: ['task:1'], after: 0, limit: 1_000 });
      expect(read).toEqual(events.map((event) => ({ ...event, payload: event.payload ?? null })));
    });

    it('keeps a pending event out of every read by id until it is confirmed with its id', async () => {
      const { id: _id, ...draft } = storedEvent(5, { payload: { pending: true } });
      await store.append(storedEvent(3));
      await store.insertPending({ ...draft, key: 'k-5' });
      expect((await store.readAfter({ topics: ['task:1'], after: 0, limit: 10 })).map((e) => e.id)).toEqual([3]);
      expect(await store.maxId()).toBe(3);
      expect(await store.readPending({ olderThanMs: 0, limit: 10 })).toEqual([
        { event: { ...draft, key: 'k-5' }, ageMs: expect.any(Number) },
      ]);
      await store.confirm({ ...draft, key: 'k-5', id: 5 });
      // Idempotent: a second confirmation (the publisher's retry, the repair pass) changes nothing.
      await store.confirm({ ...draft, key: 'k-5', id: 5 });
      expect(await store.readAfter({ topics: ['task:1'], after: 0, limit: 10 })).toEqual([
        storedEvent(3),
        storedEvent(5, { payload: { pending: true } }),
      ]);
      expect(await store.readPending({ olderThanMs: 0, limit: 10 })).toEqual([]);
      expect(await store.maxId()).toBe(5);
    });

    it('stores the publisher-serialised payload bytes as they are', async () => {
      const { id: _id, ...draft } = storedEvent(1);
      await store.insertPending({ ...draft, payload: { ignored: true }, payloadJson: '{"b":1,"a":[2]}', key: 'k' });
      await store.confirm({ ...draft, key: 'k', id: 1 });
      const [event] = await store.readAfter({ topics: ['task:1'], after: 0, limit: 1 });
      expect(JSON.stringify(event?.payload)).toBe('{"b":1,"a":[2]}');
    });

    it('discards a pending event, but never a confirmed one', async () => {
      const { id: _id, ...draft } = storedEvent(1);
      await store.insertPending({ ...draft, key: 'gone' });
      await store.insertPending({ ...draft, key: 'kept' });
      await store.confirm({ ...draft, key: 'kept', id: 1 });
      await store.discardPending('gone');
      await store.discardPending('kept');
      expect(await store.readPending({ olderThanMs: 0, limit: 10 })).toEqual([]);
      expect((await store.readAfter({ topics: ['task:1'], after: 0, limit: 10 })).map((e) => e.id)).toEqual([1]);
    });

    it('stores a confirmed event whole when its pending row was dropped meanwhile', async () => {
      const { id: _id, ...draft } = storedEvent(8, { payload: { late: true } });
      await store.insertPending({ ...draft, key: 'late' });
      await store.discardPending('late');
      await store.confirm({ ...draft, key: 'late', id: 8 });
      expect(await store.readAfter({ topics: ['task:1'], after: 0, limit: 10 })).toEqual([
        storedEvent(8, { payload: { late: true } }),
      ]);
    });

    it('lists only pending rows at least the given age, oldest first, up to the limit', async () => {
      const { id: _id, ...draft } = storedEvent(1);
      for (const key of ['a', 'b', 'c']) await store.insertPending({ ...draft, key });
      expect((await store.readPending({ olderThanMs: 0, limit: 2 })).map((row) => row.event.key)).toEqual(['a', 'b']);
      expect(await store.readPending({ olderThanMs: 60_000, limit: 10 })).toEqual([]);
    });

    it('group-commits pending inserts and confirmations together, each acknowledged', async () => {
      const drafts = Array.from({ length: 200 }, (_, index) => {
        const { id: _id, ...draft } = storedEvent(index + 1);
        return { ...draft, key: `g${index}` };
      });
      await Promise.all(drafts.slice(0, 100).map((draft) => store.insertPending(draft)));
      // Confirmations of the first half race with pending inserts of the second half.
      await Promise.all([
        ...drafts.slice(0, 100).map((draft, index) => store.confirm({ ...draft, id: index + 1 })),
        ...drafts.slice(100).map((draft) => store.insertPending(draft)),
      ]);
      expect((await store.readAfter({ topics: ['task:1'], after: 0, limit: 1_000 })).length).toBe(100);
      expect((await store.readPending({ olderThanMs: 0, limit: 1_000 })).length).toBe(100);
    });

    it('stores undefined payload as JSON null', async () => {
      await store.append(storedEvent(1, { payload: undefined }));
      const [event] = await store.readAfter({ topics: ['task:1'], after: 0, limit: 1 });
      expect(event?.payload).toBeNull();
    });

    it('round-trips the critical flag', async () => {
      await appendAll([storedEvent(1, { critical: true }), storedEvent(2, { critical: false })]);
      const events = await store.readAfter({ topics: ['task:1'], after: 0, limit: 10 });
      expect(events.map((e) => e.critical)).toEqual([true, false]);
    });

    it('round-trips ts as the same instant in ISO-8601 UTC', async () => {
      const stamps = ['2025-03-04T05:06:07.890Z', '2024-02-29T23:59:59.999+02:00', '1999-12-31T23:59:59Z'];
      await appendAll(stamps.map((ts, index) => storedEvent(index + 1, { ts })));
      const events = await store.readAfter({ topics: ['task:1'], after: 0, limit: 10 });
      expect(events.map((e) => e.ts)).toEqual(stamps.map((ts) => new Date(ts).toISOString()));
    });

    it('reports the highest id stored, 0 when empty', async () => {
      expect(await store.maxId()).toBe(0);
      await appendAll([storedEvent(5), storedEvent(9, { topic: 'other' }), storedEvent(2)]);
      expect(await store.maxId()).toBe(9);
    });

    it('round-trips ids near 1.8e15 and up to MAX_SAFE_INTEGER exactly, as numbers', async () => {
      const ids = [BIG_ID, BIG_ID + 1, Number.MAX_SAFE_INTEGER - 1, Number.MAX_SAFE_INTEGER];
      await appendAll(ids.map((id) => storedEvent(id)));
      const events = await store.readAfter({ topics: ['task:1'], after: BIG_ID - 1, limit: 10 });
      expect(events.map((e) => e.id)).toEqual(ids);
      expect(typeof events[0]?.id).toBe('number');
      expect(await store.maxId()).toBe(Number.MAX_SAFE_INTEGER);
      const between = await store.readAfter({
        topics: ['task:1'],
        after: BIG_ID,
        before: Number.MAX_SAFE_INTEGER,
        limit: 10,
      });
      expect(between.map((e) => e.id)).toEqual([BIG_ID + 1, Number.MAX_SAFE_INTEGER - 1]);
    });

    it('records a head id, returns it once, then undefined', async () => {
      expect(await store.takeRecordedHeadId()).toBeUndefined();
      await store.recordHeadId(BIG_ID);
      expect(await store.takeRecordedHeadId()).toBe(BIG_ID);
      expect(await store.takeRecordedHeadId()).toBeUndefined();
    });

    it('keeps the highest head recorded since the last take (ids never go backwards)', async () => {
      await store.recordHeadId(100);
      await store.recordHeadId(300);
      await store.recordHeadId(200);
      expect(await store.takeRecordedHeadId()).toBe(300);
      await store.recordHeadId(50);
      expect(await store.takeRecordedHeadId()).toBe(50);
    });

    it('deletes events published strictly before the cutoff and returns how many', async () => {
      const at = (offsetMs: number): string => new Date(T0 + offsetMs).toISOString();
      await appendAll([
        storedEvent(1, { ts: at(-2_000) }),
        storedEvent(2, { ts: at(-1_000), topic: 'other' }),
        storedEvent(3, { ts: at(0) }),
        storedEvent(4, { ts: at(1_000) }),
      ]);
      expect(await store.deleteOlderThan(new Date(T0))).toBe(2);
      const left = await store.readAfter({ topics: ['task:1', 'other'], after: 0, limit: 10 });
      expect(left.map((e) => e.id)).toEqual([3, 4]);
      expect(await store.deleteOlderThan(new Date(T0))).toBe(0);
    });

    it('deletes old events of some topics only, when asked to', async () => {
      const at = (offsetMs: number): string => new Date(T0 + offsetMs).toISOString();
      await appendAll([
        storedEvent(1, { ts: at(-2_000) }),
        storedEvent(2, { ts: at(-1_000), topic: 'other' }),
        storedEvent(3, { ts: at(1_000), topic: 'other' }),
      ]);
      expect(await store.deleteOlderThan(new Date(T0), { topics: ['other'] })).toBe(1);
      const left = await store.readAfter({ topics: ['task:1', 'other'], after: 0, limit: 10 });
      expect(left.map((e) => e.id)).toEqual([1, 3]);
    });

    it('reports up when healthy and down (without throwing) once closed', async () => {
      expect(await store.health()).toEqual({ status: 'up' });
      expect(store.knownDown()).toBeUndefined();
      await store.close();
      expect((await store.health()).status).toBe('down');
      // Known without asking the database: what a critical publish checks first.
      expect(store.knownDown()).toMatchObject({ status: 'down' });
    });

    it('tolerates init() and close() being called again, and refuses use after close', async () => {
      await store.init();
      await store.append(storedEvent(1));
      await store.close();
      await store.close();
      await expect(store.maxId()).rejects.toThrow(/closed/);
    });

    const { reopen } = hooks;
    it.skipIf(!reopen)('keeps events and the recorded head across close and reopen', async () => {
      if (!reopen) return;
      await appendAll([storedEvent(1), storedEvent(BIG_ID, { payload: { é: '🚀' }, critical: false })]);
      await store.recordHeadId(BIG_ID + 5);
      await store.close();
      const reopened = track(await reopen());
      expect(await reopened.readAfter({ topics: ['task:1'], after: 0, limit: 10 })).toEqual([
        storedEvent(1),
        storedEvent(BIG_ID, { payload: { é: '🚀' }, critical: false }),
      ]);
      expect(await reopened.maxId()).toBe(BIG_ID);
      expect(await reopened.takeRecordedHeadId()).toBe(BIG_ID + 5);
    });
  });
}
