import { describe, expect, it } from 'vitest';
import {
  compareIds,
  formatVerdict,
  judgeChaos,
  type ChaosHistory,
  type ChaosRule,
  type ClientHistory,
  type ConnectionRecord,
  type PublishRecord,
  type ReceivedFrame,
} from './helpers/chaos-judge.js';

/**
 * The chaos test's judge on synthetic histories: a clean run passes, and each rule, broken on its
 * own, is reported (and nothing else is), so every check of chaos.test.ts is known to be able to fail.
 */

const A = 'http://a';
const B = 'http://b';
const LIVENESS_MS = 1_000;

function publish(marker: string, fields: Partial<PublishRecord> & { at: number }): PublishRecord {
  const { at, ...rest } = fields;
  return {
    marker,
    topic: 'user:u1',
    critical: false,
    instance: A,
    status: 202,
    sentAt: at,
    answeredAt: at + 1,
    ...rest,
  };
}

const event = (at: number, id: string, marker: string, topic = 'user:u1'): ReceivedFrame => ({
  kind: 'event',
  at,
  id,
  type: 'notification',
  topic,
  marker,
});
const control = (at: number, type: string, data: Record<string, unknown> = {}): ReceivedFrame => ({
  kind: 'control',
  at,
  type,
  data,
});
const established = (at: number, lastEventId?: string) =>
  control(at, 'connection.established', lastEventId === undefined ? {} : { lastEventId });
const resumed = (at: number, complete: boolean) => control(at, 'stream.resumed', { replayed: 0, complete });
const reset = (at: number) => control(at, 'stream.reset', { reason: 'gap' });

function connection(
  instance: string,
  frames: ReceivedFrame[],
  fields: Partial<ConnectionRecord> = {},
): ConnectionRecord {
  return { instance, openedAt: frames[0]?.at ?? 0, status: 200, frames, closedByHarness: false, ...fields };
}

/**
 * The clean run every case starts from: events 10, 20 (critical), 30 on user:u1; client c1 (also on
 * doc:b, which nothing is published to) is on A,
 * loses its stream in the fault at 250 and resumes on B; c2 stays on A. Both end with a final resume.
 */
function cleanRun(): ChaosHistory {
  const publishes = [
    publish('m10', { at: 100, id: '10' }),
    publish('m20', { at: 200, id: '20', critical: true, status: 201 }),
    publish('m30', { at: 300, id: '30' }),
    publish('refused', { at: 310, critical: true, status: 503, code: 'store_unavailable' }),
    publish('lost-in-flight', { at: 320, status: undefined, error: 'ECONNRESET' }),
  ];
  const c1: ClientHistory = {
    name: 'c1',
    topics: ['user:u1', 'doc:b'],
    connections: [
      connection(A, [established(50, '5'), event(101, '10', 'm10'), event(201, '20', 'm20')], { endedAt: 260 }),
      connection(B, [established(270), resumed(271, true), event(301, '30', 'm30')], {
        lastEventId: '20',
        endedAt: 500,
        closedByHarness: true,
      }),
      connection(A, [established(510), resumed(511, true)], { lastEventId: '30', endedAt: 512, closedByHarness: true }),
    ],
  };
  const c2: ClientHistory = {
    name: 'c2',
    topics: ['user:u1', 'doc:a'],
    connections: [
      connection(A, [established(50, '5'), event(101, '10', 'm10'), event(201, '20', 'm20'), event(301, '30', 'm30')], {
        endedAt: 500,
        closedByHarness: true,
      }),
      connection(B, [established(510), resumed(511, true)], { lastEventId: '30', endedAt: 512, closedByHarness: true }),
    ],
  };
  return { publishes, clients: [c1, c2], faults: [{ name: 'kill -9', startedAt: 250, endedAt: 280 }] };
}

const rulesOf = (history: ChaosHistory): ChaosRule[] =>
  judgeChaos(history, { livenessMs: LIVENESS_MS }).violations.map((violation) => violation.rule);

/** Asserts that `history` breaks `rule` and nothing else, with each of `evidence` in the first violation. */
function expectBroken(history: ChaosHistory, rule: ChaosRule, ...evidence: string[]): void {
  const { violations } = judgeChaos(history, { livenessMs: LIVENESS_MS });
  expect(violations.map((violation) => violation.rule)).toEqual([rule]);
  for (const part of evidence) expect(violations[0]?.detail).toContain(part);
}

/** The clean run with c1's first connection (on A) replaced by `frames`. */
function withFirstStream(frames: ReceivedFrame[], publishes: PublishRecord[] = []): ChaosHistory {
  const history = cleanRun();
  const c1 = history.clients[0] as ClientHistory;
  const first = c1.connections[0] as ConnectionRecord;
  c1.connections[0] = { ...first, frames: [established(50, '5'), ...frames] };
  return { ...history, publishes: [...history.publishes, ...publishes] };
}

/** The clean run with event 25 published while c1 was away (c2 got it), and c1's resume reading `frames`. */
function lostWhileAway(frames: ReceivedFrame[]): ChaosHistory {
  const history = cleanRun();
  history.publishes = [...history.publishes, publish('m25', { at: 255, id: '25' })];
  ((history.clients[0] as ClientHistory).connections[1] as ConnectionRecord).frames = [established(270), ...frames];
  (history.clients[1]?.connections[0] as ConnectionRecord).frames.splice(3, 0, event(256, '25', 'm25'));
  return history;
}

describe('chaos judge', () => {
  it('passes a clean run, counts answers and times the reconnect of each fault', () => {
    const verdict = judgeChaos(cleanRun(), { livenessMs: LIVENESS_MS });
    expect(verdict.violations).toEqual([]);
    expect(verdict.answers).toEqual({ '201': 1, '202': 2, '503 store_unavailable': 1, 'no answer': 1 });
    expect(verdict.deliveries).toBe(6);
    expect(verdict.controls).toEqual({ 'stream.resumed {complete: true}': 3 });
    expect(verdict.reconnects).toEqual([{ fault: 'kill -9', disconnects: 1, resumed: 1, p50Ms: 11, maxMs: 11 }]);
    expect(formatVerdict(verdict)).toContain('✓ every rule held');
  });

  it('orders ids by value: digit runs as numbers, the rest as text', () => {
    expect(compareIds('9', '10')).toBeLessThan(0);
    expect(compareIds('1700-10', '1700-9')).toBeGreaterThan(0);
    expect(compareIds('042', '42')).toBe(0);
    expect(compareIds('17.a', '17.b')).toBeLessThan(0);
  });

  it('reports an id outside the shape of the HTTP API (docs/http-api.md)', () => {
    const history = cleanRun();
    history.publishes = [...history.publishes, publish('odd', { at: 400, id: 'not an id!', topic: 'doc:z' })];
    expectBroken(history, 'malformed_id');
  });

  it('reports an id received twice, across a reconnect', () => {
    const history = cleanRun();
    const c1 = history.clients[0] as ClientHistory;
    (c1.connections[1] as ConnectionRecord).frames.splice(2, 0, event(272, '20', 'm20'));
    expectBroken(history, 'duplicate');
  });

  it('reports one id acknowledged for two different events', () => {
    const history = cleanRun();
    history.publishes = [
      ...history.publishes,
      publish('x', { at: 400, id: '40', topic: 'doc:z', instance: A }),
      publish('y', { at: 400, id: '40', topic: 'doc:z', instance: B }),
    ];
    expectBroken(
      history,
      'shared_id',
      'doc:z notification x (acknowledged by http://a)',
      'doc:z notification y (acknowledged by http://b)',
    );
  });

  it.each([
    ['an id lower than one the client already had', 'order', event(150, '8', 'm8', 'doc:b'), '8'],
    ['one event delivered under another id than the one acknowledged', 'one_event_two_ids', event(150, '15', 'm10')],
    ['an event of a topic the client did not subscribe to', 'foreign_topic', event(150, '15', 'm15', 'user:u2'), '15'],
  ] as const)('reports %s', (_, rule, extra, acknowledged?: string) => {
    // One event more between 10 and 20 on c1's first stream, acknowledged on its topic if given.
    const acknowledgement =
      acknowledged === undefined || extra.kind !== 'event'
        ? []
        : [publish(extra.marker ?? '', { at: 140, id: acknowledged, topic: extra.topic })];
    const history = withFirstStream([event(101, '10', 'm10'), extra, event(201, '20', 'm20')], acknowledgement);
    expectBroken(history, rule);
  });

  it('reports a critical event answered 201 that a subscriber never got, whatever resets it read', () => {
    const history = withFirstStream([event(101, '10', 'm10'), reset(150)]);
    expectBroken(history, 'critical_lost');
  });

  it('reports an event answered with an error that someone received', () => {
    const history = cleanRun();
    (history.clients[1]?.connections[0] as ConnectionRecord).frames.push(event(311, '31', 'refused'));
    expectBroken(history, 'refused_delivered', '503 store_unavailable');
  });

  it('reports a lost event the client passed over with no reset', () => {
    const history = withFirstStream(
      [event(101, '10', 'm10'), event(201, '20', 'm20')],
      [publish('m15', { at: 150, id: '15', topic: 'doc:b' })],
    );
    expectBroken(history, 'untold_loss', 'passed over by 20');
  });

  it('reports a lost event told only after the client had passed over it (the reset came too late)', () => {
    const history = withFirstStream(
      [event(101, '10', 'm10'), event(201, '20', 'm20'), reset(230)],
      [publish('m15', { at: 150, id: '15', topic: 'doc:b' })],
    );
    expectBroken(history, 'untold_loss', 'no stream.reset {gap} before that');
  });

  it('reports a lost event whose only reset was read before it was even published', () => {
    const history = withFirstStream(
      [reset(90), event(101, '10', 'm10'), event(201, '20', 'm20')],
      [publish('m15', { at: 150, id: '15', topic: 'doc:b' })],
    );
    expectBroken(history, 'untold_loss', 'no stream.reset {gap} at or after its publish');
  });

  it('accepts a loss told at once and again after it (reset when the bus is lost, reset at the rejoin)', () => {
    const unknownId = control(240, 'stream.reset', { reason: 'unknown_id' });
    const history = withFirstStream(
      [reset(90), event(101, '10', 'm10'), event(201, '20', 'm20'), reset(230), unknownId],
      [publish('m15', { at: 150, id: '15', topic: 'doc:b' })],
    );
    expect(rulesOf(history)).toEqual([]);
  });

  it('accepts a loss told by the resume that skipped it (reset, replay, complete: false)', () => {
    const history = lostWhileAway([reset(270), resumed(271, false), event(301, '30', 'm30')]);
    expect(rulesOf(history)).toEqual([]);
  });

  it('reports a resume that told a loss and still said complete: true', () => {
    const history = lostWhileAway([reset(270), event(301, '30', 'm30'), resumed(302, true)]);
    expectBroken(history, 'loss_reported_complete');
  });

  it('reports a client never resumed after a disconnect, and one resumed past the bound', () => {
    const never = cleanRun();
    (never.clients[0] as ClientHistory).connections.splice(1);
    expectBroken(never, 'liveness', 'was never resumed');
    expect(judgeChaos(never, { livenessMs: LIVENESS_MS }).reconnects).toEqual([
      { fault: 'kill -9', disconnects: 1, resumed: 0 },
    ]);

    const slow = cleanRun();
    const late = (slow.clients[0] as ClientHistory).connections[1] as ConnectionRecord;
    late.frames = [established(2_000), resumed(2_001, true), event(2_002, '30', 'm30')];
    (slow.clients[0] as ClientHistory).connections.splice(2);
    expectBroken(slow, 'liveness', 'resumed only after');
  });
});
