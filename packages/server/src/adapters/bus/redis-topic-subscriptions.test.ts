import { describe, expect, it } from 'vitest';
import type { EventRecord } from '../../core/event-record.js';
import { TopicSubscriptions } from './redis-topic-subscriptions.js';

const PREFIX = 'ch:';

function record(id: number, topic = 'a'): EventRecord {
  return { id, topic, type: 'notification', ts: new Date(0).toISOString(), payload: { id }, critical: true };
}

/**
 * TopicSubscriptions over a scripted Redis: SUBSCRIBE answers or fails on demand, the hot log is a
 * list. The ordering logic is what is under test here; the bus suites run it against real Redis
 * (one node, a Cluster, its failover).
 */
function scripted(options: { readGate?: Promise<void> } = {}) {
  const log: EventRecord[] = [];
  const state = { subscribeFails: false, usable: true, known: 0 };
  const subscriptions = new TopicSubscriptions({
    subscriber: { status: 'ready' },
    pubsub: {
      subscribe: async () => {
        if (state.subscribeFails) throw new Error('CLUSTERDOWN the cluster is down');
      },
      unsubscribe: async () => undefined,
    },
    channelPrefix: PREFIX,
    knownId: () => state.known,
    noteId: (id) => {
      state.known = Math.max(state.known, id);
    },
    redisUsable: () => state.usable,
    readCounter: async () => 0,
    readLog: async (_topic, after) => {
      await options.readGate;
      return { events: log.filter((event) => event.id > after), gapTopics: [], oldestId: 0, truncated: false };
    },
    onOpenedLocally: () => undefined,
    onReceived: () => undefined,
    onGapNotice: () => undefined,
    reportLiveGap: () => undefined,
  });
  const publish = (event: EventRecord) => {
    log.push(event);
    return JSON.stringify(event);
  };
  return { subscriptions, state, publish };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('TopicSubscriptions', () => {
  it('re-reads what a topic missed before handing out a record that arrives after its re-subscription failed', async () => {
    const { subscriptions, state, publish } = scripted();
    const got: number[] = [];
    await subscriptions.subscribe('a', (event) => got.push(event.id));
    subscriptions.onMessage(`${PREFIX}a`, publish(record(1)));
    expect(got).toEqual([1]);

    // The subscriber is lost and comes back while the cluster is down: the topic's SUBSCRIBE fails.
    state.subscribeFails = true;
    subscriptions.resubscribeAll();
    await settle();
    // Published meanwhile, never received (nobody was subscribed).
    for (const id of [2, 3, 4]) publish(record(id));
    // The client library re-subscribed by itself: live records flow again, and the next one is the first seen.
    state.subscribeFails = false;
    subscriptions.onMessage(`${PREFIX}a`, publish(record(5)));
    subscriptions.onMessage(`${PREFIX}a`, publish(record(6)));
    await settle();
    // Handed out at once, 5 would have put the topic's streams past 2–4, critical as they are.
    expect(got).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('leaves a topic opened during an outage to the rejoin: its records are not held for a re-read', async () => {
    const { subscriptions, state, publish } = scripted();
    state.usable = false;
    const got: number[] = [];
    await subscriptions.subscribe('a', (event) => got.push(event.id));
    subscriptions.deliverLocal(record(1));
    subscriptions.onMessage(`${PREFIX}a`, publish(record(2)));
    await settle();
    expect(got).toEqual([1, 2]);
  });

  it('tells a partition tick that comes during a catch-up only after the records it waited with', async () => {
    let openGate = () => undefined as void;
    const readGate = new Promise<void>((resolve) => (openGate = resolve));
    const { subscriptions, publish } = scripted({ readGate });
    const seen: string[] = [];
    await subscriptions.subscribe('a', (event) => seen.push(`event ${event.id}`));
    subscriptions.onMessage(`${PREFIX}a`, publish(record(1)));
    publish(record(2)); // missed in a blip
    subscriptions.resubscribeAll();
    subscriptions.onMessage(`${PREFIX}a`, publish(record(3)));
    subscriptions.deliverTick(3, (value) => seen.push(`tick ${value}`));
    await settle();
    // Told now, the tick would let a merge barrier hand out other partitions' ids above 2 first.
    expect(seen).toEqual(['event 1']);
    openGate();
    await settle();
    expect(seen).toEqual(['event 1', 'event 2', 'event 3', 'tick 3']);
    // With no catch-up running, at once.
    subscriptions.deliverTick(4, (value) => seen.push(`tick ${value}`));
    expect(seen.at(-1)).toBe('tick 4');
  });

  it('holds a partition tick while a topic waits for the rejoin, and tells it after that topic’s re-read records', async () => {
    const { subscriptions, state, publish } = scripted();
    const seen: string[] = [];
    await subscriptions.subscribe('a', (event) => seen.push(`a ${event.id}`));
    subscriptions.onMessage(`${PREFIX}a`, publish(record(1)));
    // Opened while Redis is unreachable: not subscribed until the rejoin, which re-reads it.
    state.usable = false;
    const unsubscribeB = await subscriptions.subscribe('b', (event) => seen.push(`b ${event.id}`));
    // Published elsewhere meanwhile, on the partition's counter; its tick vouches for them.
    publish(record(2, 'b'));
    publish(record(3, 'b'));
    subscriptions.deliverTick(3, (value) => seen.push(`tick ${value}`));
    await settle();
    // Told now, the tick would let a merge barrier hand out other partitions' ids above 2 and 3
    // first, and b's streams would drop them when the re-read brings them.
    expect(seen).toEqual(['a 1']);
    state.usable = true;
    expect(await subscriptions.resyncPending()).toBe(true);
    await settle();
    expect(seen).toEqual(['a 1', 'b 2', 'b 3', 'tick 3']);
    // A topic that waits for the rejoin and is given up instead holds nothing any more.
    state.usable = false;
    const unsubscribeC = await subscriptions.subscribe('c', () => undefined);
    subscriptions.deliverTick(4, (value) => seen.push(`tick ${value}`));
    expect(seen.at(-1)).toBe('tick 3');
    await unsubscribeC();
    expect(seen.at(-1)).toBe('tick 4');
    await unsubscribeB();
  });

  it('re-reads a quiet topic whose re-subscription failed when a tick comes, then tells the tick', async () => {
    const { subscriptions, state, publish } = scripted();
    const seen: string[] = [];
    await subscriptions.subscribe('a', (event) => seen.push(`a ${event.id}`));
    subscriptions.onMessage(`${PREFIX}a`, publish(record(1)));
    // A subscriber blip while the cluster is down: the topic's SUBSCRIBE fails, Redis stays usable.
    state.subscribeFails = true;
    subscriptions.resubscribeAll();
    await settle();
    publish(record(2)); // missed, and nothing more is published on the topic
    state.subscribeFails = false;
    subscriptions.deliverTick(2, (value) => seen.push(`tick ${value}`));
    await settle();
    expect(seen).toEqual(['a 1', 'a 2', 'tick 2']);
  });
});
