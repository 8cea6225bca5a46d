import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createSSEClient } from './sse-client.js';
import { FakeNetwork, frames } from './testing/fake-network.js';
import { seededRandom } from './testing/fakes.js';
import { advance, settle } from './testing/harness.js';
import { STREAM_PATH } from './wire.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const CLIENTS = 200;
const RETRY_MS = 2000; // the server's `retry:` (its RETRY_MS default)

/**
 * A server restart drops every client at once; returns how long after the drop each client's
 * first reconnect request arrived.
 */
async function reconnectDelaysAfterRestart(randomFor: (client: number) => () => number): Promise<number[]> {
  const reconnectAt: number[] = [];
  const streams: { fail(): void }[] = [];
  for (let index = 0; index < CLIENTS; index++) {
    const network = new FakeNetwork();
    network.onRequest = (pending) => {
      if (pending.url.pathname !== STREAM_PATH) return;
      if (network.to(STREAM_PATH).length === 1) {
        const stream = pending.respondStream();
        stream.push(frames.retry(RETRY_MS) + frames.established(`c${index}`));
        streams.push(stream);
      } else if (network.to(STREAM_PATH).length === 2) {
        reconnectAt.push(Date.now());
      }
    };
    createSSEClient({
      url: 'http://sse.test',
      getToken: async () => 'token',
      fetch: network.fetch,
      storage: null,
      signals: null,
      random: randomFor(index),
    });
  }
  await settle();
  expect(streams).toHaveLength(CLIENTS);
  const droppedAt = Date.now();
  for (const stream of streams) stream.fail();
  await settle();
  for (let elapsed = 0; elapsed < 10_000; elapsed += 50) await advance(50);
  expect(reconnectAt).toHaveLength(CLIENTS);
  return reconnectAt.map((time) => time - droppedAt);
}

function largestBucketShare(delays: number[], bucketMs: number): number {
  const buckets = new Map<number, number>();
  for (const delay of delays)
    buckets.set(Math.floor(delay / bucketMs), (buckets.get(Math.floor(delay / bucketMs)) ?? 0) + 1);
  return Math.max(...buckets.values()) / delays.length;
}

describe('no retry storm after a server restart', () => {
  it('spreads 200 reconnections over the backoff window (full jitter, one PRNG per client)', async () => {
    const delays = await reconnectDelaysAfterRestart((index) => seededRandom(0x5eed + index * 7919));
    // retry: 2000 is the floor and the base: the window of the first retry is [2000, 4000) ms.
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(RETRY_MS);
    expect(Math.max(...delays)).toBeLessThan(2 * RETRY_MS + 50);
    expect(Math.max(...delays) - Math.min(...delays)).toBeGreaterThan(0.9 * RETRY_MS);
    expect(largestBucketShare(delays, 100)).toBeLessThanOrEqual(0.15);
  });

  it('would flag clients that all draw the same delay (the check can fail)', async () => {
    const delays = await reconnectDelaysAfterRestart(() => () => 0.5);
    expect(largestBucketShare(delays, 100)).toBe(1);
  });
});
