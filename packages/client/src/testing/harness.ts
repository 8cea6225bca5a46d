/**
 * @module Test harness: a client wired to the fake network, a memory storage and fake signals,
 * with a log of every state transition. Use with `vi.useFakeTimers()`.
 */
import { vi } from 'vitest';
import type { ConnectionSnapshot } from '../connection-state.js';
import { createSSEClient, type SSEClient, type SSEClientOptions } from '../sse-client.js';
import { STREAM_PATH } from '../wire.js';
import { FakeNetwork, frames, type FakeServerStream } from './fake-network.js';
import { FakeBrowserSignals, MemoryStorage } from './fakes.js';

export const BASE_URL = 'http://sse.test';

/** Lets fetches, stream reads and zero-delay timers run, without moving the clock. */
export async function settle(): Promise<void> {
  for (let round = 0; round < 5; round++) await vi.advanceTimersByTimeAsync(0);
}

/** Moves the fake clock, running due timers and the work they start. */
export async function advance(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
  await settle();
}

export interface Harness {
  client: SSEClient;
  network: FakeNetwork;
  storage: MemoryStorage;
  signals: FakeBrowserSignals;
  getToken: ReturnType<typeof vi.fn<(options: { forceRefresh: boolean }) => Promise<string>>>;
  /** `state:reason` of every published snapshot whose state or reason changed. */
  transitions: string[];
  snapshot(): ConnectionSnapshot;
  /** Answers the latest stream request and sends `retry:` + `connection.established`. */
  openStream(connectionId?: string): Promise<FakeServerStream>;
}

/** A client against the fake network (not yet settled: call `settle()` to let it send its request). */
export function createHarness(options: Partial<SSEClientOptions> = {}): Harness {
  const network = new FakeNetwork();
  const storage = new MemoryStorage();
  const signals = new FakeBrowserSignals();
  const getToken = vi.fn(async ({ forceRefresh }: { forceRefresh: boolean }) =>
    forceRefresh ? 'fresh-token' : 'token',
  );
  const client = createSSEClient({
    url: BASE_URL,
    getToken,
    fetch: network.fetch,
    storage,
    signals,
    random: () => 0.5,
    ...options,
  });
  // An illegal transition is a client bug: rethrown from the emitter, it fails the test run.
  client.on('error', (error) => {
    if (error.code === 'internal_error') throw error;
  });
  const transitions: string[] = [];
  let last = '';
  const record = () => {
    const { state, reason } = client.getSnapshot();
    const entry = `${state}:${reason}`;
    if (entry !== last) transitions.push(entry);
    last = entry;
  };
  record();
  client.subscribe(record);
  return {
    client,
    network,
    storage,
    signals,
    getToken,
    transitions,
    snapshot: () => client.getSnapshot(),
    async openStream(connectionId = 'c1') {
      await settle();
      const stream = network.last(STREAM_PATH).respondStream();
      stream.push(frames.retry(1000) + frames.established(connectionId));
      await settle();
      return stream;
    },
  };
}
