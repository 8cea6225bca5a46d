import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSharedEventLog, type SharedEventLog } from '../../../test/helpers/shared-event-log.js';
import type { MemoryEventBus } from '../../adapters/bus/memory-event-bus.js';
import { AppError } from '../../core/errors.js';
import type { EventRecord } from '../../core/event-record.js';
import type { EventPublisher } from '../events/event-publisher.js';
import { GENERATION_JOURNAL_TOPIC } from '../../core/journal-events.js';
import { Metrics } from '../../adapters/observability/metrics.js';
import type { PgliteEventStore } from '../../adapters/store/pglite-event-store.js';
import type { AIProvider } from '../../adapters/ai/ai-provider.js';
import { FakeOpenAIServer, waitUntil } from '../../adapters/ai/testing/fake-openai-server.js';
import { instanceTagOf, newGenerationId } from '../../core/job-id.js';
import {
  GenerationService,
  RESTART_ERROR,
  SHUTDOWN_ERROR,
  type GenerationServiceOptions,
} from './generation-service.js';
import { OfflineProvider } from '../../adapters/ai/offline-provider.js';
import { OpenAICompatibleProvider } from '../../adapters/ai/openai-compatible-provider.js';

/** A conversation of one user message. */
const user = (content: string) => [{ role: 'user' as const, content }];

/** Polls an async condition every 10 ms for up to 10 s. */
async function until(condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Two instances in one process: two services on one bus and one store, as behind a load
 * balancer with Redis and PostgreSQL (`singleInstance: false`).
 */
describe('GenerationService across instances', () => {
  let bus: MemoryEventBus;
  let store: PgliteEventStore;
  let log: SharedEventLog;
  let services: GenerationService[];
  let publisher: EventPublisher;

  beforeEach(async () => {
    log = await openSharedEventLog();
    ({ bus, store, publisher } = log);
    services = [];
  });
  afterEach(async () => {
    await Promise.allSettled(services.map((service) => service.stop()));
    await log.close();
  });

  function instance(instanceId: string, provider: AIProvider, options: Partial<GenerationServiceOptions> = {}) {
    const service = new GenerationService({
      provider,
      publisher,
      bus,
      store,
      metrics: new Metrics({ defaultMetrics: false }),
      logger: log.logger,
      instanceId,
      flushMs: 20,
      maxConcurrentPerUser: 3,
      defaultMaxTokens: 400,
      maxDurationMs: 30_000,
      singleInstance: false,
      ...options,
    });
    services.push(service);
    return service;
  }

  const slowOffline = () => new OfflineProvider({ tokensPerSecond: 30, seed: 1 });
  const stored = (topic = 'user:u1') => store.readAfter({ topics: [topic], after: 0, limit: 10_000 });
  const outcomes = (events: EventRecord[], id: string) =>
    events.filter(
      (event) =>
        event.type !== 'ai.generation.started' && (event.payload as { generationId: string }).generationId === id,
    );

  it('another instance reads a running generation’s text so far from the hot log', async () => {
    const a = instance('a', slowOffline());
    const b = instance('b', slowOffline());
    const id = await a.create('u1', { messages: user('The old harbour town') });
    let seenByB = '';
    await until(async () => {
      const view = await b.get('u1', id);
      expect(view.status).toBe('running');
      seenByB = view.text;
      return seenByB.split(' ').length >= 4;
    });
    expect((await a.get('u1', id)).text.startsWith(seenByB)).toBe(true);
    await expect(b.get('u2', id)).rejects.toMatchObject({ code: 'not_found' });
  });

  it('a cancel landing on another instance stops the generation where it runs and aborts its request', async () => {
    const fake = await FakeOpenAIServer.start({ chunkDelayMs: 100 });
    try {
      const provider = new OpenAICompatibleProvider({
        baseUrl: fake.baseUrl,
        model: 'm',
        connectTimeoutMs: 2_000,
        idleTimeoutMs: 2_000,
        totalTimeoutMs: 20_000,
      });
      const a = instance('a', provider);
      const b = instance('b', provider);
      const id = await a.create('u1', { messages: user('slow') });
      await waitUntil(() => (fake.requests[0]?.chunksSent ?? 0) >= 1, 5_000, 'a first chunk');
      await b.cancel('u1', id);
      await waitUntil(() => fake.requests[0]?.aborted === true, 5_000, 'the abort at the provider');
      await until(async () => (await a.get('u1', id)).status === 'cancelled');
      // One outcome only: B's cancelled; A published nothing after it.
      const events = await stored();
      expect(outcomes(events, id).map((event) => event.type)).toEqual(['ai.generation.cancelled']);
      const hot = (await bus.read(['user:u1'], 0, 10_000)).events;
      const cancelledAt = hot.findIndex((event) => event.type === 'ai.generation.cancelled');
      expect(hot.slice(cancelledAt + 1)).toEqual([]);
      expect((await b.get('u1', id)).status).toBe('cancelled');
    } finally {
      await fake.close();
    }
  });

  it('in a cluster, recovery fails only its own orphans; others fail once they are surely dead', async () => {
    let now = Date.now();
    const startedAt = now - 2_000;
    const mine = newGenerationId(instanceTagOf('b'), startedAt);
    const elsewhere = newGenerationId(instanceTagOf('still-running-elsewhere'), startedAt);
    for (const [id, user] of [
      [mine, 'u1'],
      [elsewhere, 'u2'],
    ] as const) {
      await publisher.publish({
        topic: GENERATION_JOURNAL_TOPIC,
        type: 'journal.started',
        payload: { jobId: id, userId: user, request: { prompt: 'x', maxTokens: 10 } },
        critical: true,
      });
      await publisher.publish({
        topic: `user:${user}`,
        type: 'ai.generation.started',
        payload: { generationId: id },
        critical: true,
      });
    }
    const b = instance('b', slowOffline(), { now: () => now, maxDurationMs: 10_000 });
    await b.start();
    expect(outcomes(await stored('user:u1'), mine).map((event) => event.payload)).toEqual([
      { generationId: mine, error: RESTART_ERROR, text: '' },
    ]);
    expect(outcomes(await stored('user:u2'), elsewhere)).toEqual([]);
    expect((await b.get('u2', elsewhere)).status).toBe('running');
    // Past its time limit and a grace period, it cannot be running anywhere any more.
    now += 75_000;
    expect(await b.get('u2', elsewhere)).toMatchObject({ status: 'failed', error: RESTART_ERROR });
    expect(outcomes(await stored('user:u2'), elsewhere)).toHaveLength(1);
    expect(await b.get('u2', elsewhere)).toMatchObject({ status: 'failed', error: RESTART_ERROR });
    expect(outcomes(await stored('user:u2'), elsewhere)).toHaveLength(1);
  });

  it('fails a generation past its time limit', async () => {
    const a = instance('a', slowOffline(), { maxDurationMs: 300 });
    const id = await a.create('u1', { messages: user('x') });
    await until(async () => (await a.get('u1', id)).status !== 'running');
    expect(await a.get('u1', id)).toMatchObject({ status: 'failed', error: expect.stringMatching(/longer than/) });
  });

  it('stop() fails running generations with their text so far, and refuses new ones', async () => {
    const a = instance('a', slowOffline());
    const id = await a.create('u1', { messages: user('x') });
    await until(async () => (await a.get('u1', id)).text !== '');
    await a.stop();
    const { text } = await a.get('u1', id);
    expect(await a.get('u1', id)).toMatchObject({ status: 'failed', error: SHUTDOWN_ERROR });
    expect(outcomes(await stored(), id).map((event) => event.payload)).toEqual([
      { generationId: id, error: SHUTDOWN_ERROR, text },
    ]);
    await expect(a.create('u1', { messages: user('y') })).rejects.toMatchObject({ code: 'shutting_down' });
  });

  it('with continueAfterRestart, stop() hands a generation over and the next start continues it', async () => {
    const a = instance('a', slowOffline(), { continueAfterRestart: true });
    const id = await a.create('u1', { messages: user('It is a truth'), maxTokens: 40 });
    await until(async () => (await a.get('u1', id)).text.split(' ').length > 4);
    await a.stop();
    // No outcome: a stored snapshot (the checkpoint clients can replay) and nothing else.
    const handedOver = outcomes(await stored(), id);
    expect(handedOver.map((event) => event.type)).toEqual(['ai.generation.snapshot']);
    const checkpoint = handedOver[0]?.payload as { seq: number; text: string };
    expect(checkpoint.text.length).toBeGreaterThan(0);

    // The same instance, restarted (same INSTANCE_ID), with a faster model.
    const b = instance('a', new OfflineProvider({ tokensPerSecond: 2_000, seed: 1 }), { continueAfterRestart: true });
    await b.start();
    await until(async () => (await b.get('u1', id)).status !== 'running');
    const done = await b.get('u1', id);
    expect(done.status).toBe('completed');
    expect(done.text.startsWith(checkpoint.text)).toBe(true);
    expect(done.text.length).toBeGreaterThan(checkpoint.text.length);
    // One unbroken generation on the wire: seqs 0..n across the handover, adding up to the text.
    const deltas = (await bus.read(['user:u1'], 0, 10_000)).events
      .filter((event) => event.type === 'ai.generation.delta')
      .map((event) => event.payload as { generationId: string; seq: number; text: string })
      .filter((delta) => delta.generationId === id);
    expect(deltas.map((delta) => delta.seq)).toEqual(deltas.map((_, index) => index));
    expect(deltas.map((delta) => delta.text).join('')).toBe(done.text);
    expect(deltas.find((delta) => delta.seq === checkpoint.seq + 1)).toBeDefined();
    const terminal = outcomes(await stored(), id).filter((event) => event.type !== 'ai.generation.snapshot');
    expect(terminal.map((event) => event.type)).toEqual(['ai.generation.completed']);
    // Within the token budget across both instances (the offline model: one word per token).
    const usage = (terminal[0]?.payload as { usage?: { completionTokens?: number } }).usage;
    expect(usage?.completionTokens).toBeLessThanOrEqual(40);
    expect(done.text.split(' ').length - 1).toBe(usage?.completionTokens);
  });

  it('a handed-over generation out of time fails with its text instead of continuing', async () => {
    let now = Date.now();
    const a = instance('a', slowOffline(), { continueAfterRestart: true, now: () => now, maxDurationMs: 5_000 });
    const id = await a.create('u1', { messages: user('x'), maxTokens: 40 });
    await until(async () => (await a.get('u1', id)).text !== '');
    await a.stop();
    const { text } = (outcomes(await stored(), id)[0]?.payload ?? {}) as { text?: string };
    now += 6_000;
    const b = instance('a', slowOffline(), { continueAfterRestart: true, now: () => now, maxDurationMs: 5_000 });
    await b.start();
    expect(await b.get('u1', id)).toMatchObject({ status: 'failed', error: RESTART_ERROR, text });
  });

  it('refuses to start when the store is down, without using up the user’s slots', async () => {
    const a = instance('a', new OfflineProvider({ tokensPerSecond: 100_000, seed: 1 }), { maxConcurrentPerUser: 1 });
    log.setStoreDown(true);
    for (let attempt = 0; attempt < 3; attempt++) {
      const error = await a.create('u1', { messages: user('x') }).catch((thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).code).toBe('store_unavailable');
    }
    log.setStoreDown(false);
    const id = await a.create('u1', { messages: user('x'), maxTokens: 5 });
    await until(async () => (await a.get('u1', id)).status !== 'running');
    expect((await a.get('u1', id)).status).toBe('completed');
  });

  it('reports a generation whose outcome could not be stored as failed, not running', async () => {
    const a = instance('a', slowOffline());
    const id = await a.create('u1', { messages: user('x'), maxTokens: 3 });
    log.setStoreDown(true);
    await until(async () => (await a.get('u1', id)).status !== 'running');
    expect(await a.get('u1', id)).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/could not be stored/),
    });
  });

  it('a client that received the outcome finds it on every instance at once, before the store has its id', async () => {
    const a = instance('a', slowOffline());
    const b = instance('b', slowOffline());
    const seen: Promise<[string, string]>[] = [];
    const unsubscribe = await bus.subscribe('user:u1', (event) => {
      if (event.type !== 'ai.generation.completed') return;
      const { generationId } = event.payload as { generationId: string };
      // Asked the moment the outcome is delivered, as a client would right after receiving it.
      seen.push(
        Promise.all([a.get('u1', generationId), b.get('u1', generationId)]).then(([onA, onB]) => [
          onA.status,
          onB.status,
        ]),
      );
    });
    try {
      await a.create('u1', { messages: user('The harbour'), maxTokens: 5 });
      // Its outcome, due in a few tokens, is then slow to be stored with its id.
      log.setLateWriteDelay(500);
      await until(async () => seen.length === 1);
      expect(await seen[0]).toEqual(['completed', 'completed']);
    } finally {
      await unsubscribe();
    }
  });
});
