import type { EnvelopeWithId } from '@infinitescribe/protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { frames } from './testing/fake-network.js';
import { FakeLocks, fakeBroadcastChannels } from './testing/fakes.js';
import { createHarness, settle } from './testing/harness.js';
import { STREAM_PATH } from './wire.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function twoTabs(shareAcrossTabs = true) {
  const locks = new FakeLocks();
  const BroadcastChannel = fakeBroadcastChannels();
  const options = { locks, BroadcastChannel, shareAcrossTabs };
  return [createHarness(options), createHarness(options)] as const;
}

describe('one connection shared by all tabs', () => {
  it('only the leader connects; followers receive its events, deduped', async () => {
    const [leader, follower] = twoTabs();
    const received: string[] = [];
    follower.client.on('notification', (event: EnvelopeWithId<'notification'>) => received.push(event.id));
    const stream = await leader.openStream('c1');
    await settle();
    expect(leader.network.to(STREAM_PATH)).toHaveLength(1);
    expect(follower.network.to(STREAM_PATH)).toHaveLength(0);
    expect(leader.snapshot()).toMatchObject({ state: 'open', connectionId: 'c1' });
    expect(follower.snapshot()).toMatchObject({ state: 'open', connectionId: 'c1' });

    stream.push(frames.notification('1') + frames.notification('2') + frames.notification('1'));
    await settle();
    expect(received).toEqual(['1', '2']);
    expect(follower.snapshot().lastEventId).toBe('2');
    expect(follower.getToken).not.toHaveBeenCalled();
  });

  it('fails over when the leader closes: the follower connects from the last id it received', async () => {
    const [leader, follower] = twoTabs();
    const established: string[] = [];
    follower.client.on('established', (event) => established.push(event.connectionId));
    const stream = await leader.openStream('c1');
    stream.push(frames.notification('5'));
    await settle();
    expect(established).toEqual(['c1']);

    leader.client.close();
    await settle();
    expect(leader.snapshot()).toMatchObject({ state: 'closed', reason: 'client_closed' });
    expect(follower.network.to(STREAM_PATH)).toHaveLength(1);
    expect(follower.network.last(STREAM_PATH).request.headers['last-event-id']).toBe('5');
    await follower.openStream('c2');
    expect(follower.snapshot()).toMatchObject({ state: 'open', connectionId: 'c2' });
    expect(leader.network.to(STREAM_PATH)).toHaveLength(1);
  });

  it('a follower that closes stops receiving and never connects', async () => {
    const [leader, follower] = twoTabs();
    const received: string[] = [];
    follower.client.on('*', (event) => received.push(event.id));
    const stream = await leader.openStream('c1');
    follower.client.close();
    stream.push(frames.notification('1'));
    await settle();
    expect(received).toEqual([]);
    expect(follower.snapshot()).toMatchObject({ state: 'closed', reason: 'client_closed' });
    leader.client.close();
    await settle();
    expect(follower.network.to(STREAM_PATH)).toHaveLength(0);
  });

  it('with shareAcrossTabs: false every tab connects', async () => {
    const [first, second] = twoTabs(false);
    await settle();
    expect(first.network.to(STREAM_PATH)).toHaveLength(1);
    expect(second.network.to(STREAM_PATH)).toHaveLength(1);
  });

  it('is off by default outside a page, even where navigator.locks and BroadcastChannel exist (Node >= 24)', async () => {
    vi.stubGlobal('navigator', { locks: new FakeLocks() });
    vi.stubGlobal('BroadcastChannel', fakeBroadcastChannels());
    try {
      const [first, second] = [createHarness(), createHarness()];
      await settle();
      expect(first.network.to(STREAM_PATH)).toHaveLength(1);
      expect(second.network.to(STREAM_PATH)).toHaveLength(1);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});
