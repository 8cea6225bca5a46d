import { describe, expect, it, vi } from 'vitest';
import type { FastifyBaseLogger } from 'fastify';
import type { ConversationStore } from '../../adapters/store/conversation-store.js';
import type { EventRecord } from '../../core/event-record.js';
import type { GenerationView } from '../generations/generation-service.js';
import { ConversationService } from './conversation-service.js';

/**
 * How the service learns a turn's outcome from the publisher: an outcome with its text settles the
 * turn at once; a `cancelled` (no text) asks the generation for its text so far, but only when the
 * generation is a chat turn (reading a generation reads its events: not for every generation).
 */
function setup(chatTurns: Record<string, string>) {
  let listener: ((record: EventRecord) => void) | undefined;
  const settled: { generationId: string; outcome: unknown }[] = [];
  const store = {
    conversationsOf: vi.fn(async (_userId: string, ids: readonly string[]) => {
      return new Map(ids.filter((id) => id in chatTurns).map((id) => [id, chatTurns[id]!]));
    }),
    settleTurn: vi.fn(async (generationId: string, outcome: unknown) => {
      settled.push({ generationId, outcome });
    }),
  };
  const generations = {
    get: vi.fn(async (userId: string, generationId: string) => {
      return {
        generationId,
        userId,
        status: 'cancelled',
        text: `text of ${generationId}`,
      } as unknown as GenerationView;
    }),
    cancel: vi.fn(),
  };
  const service = new ConversationService({
    store: store as unknown as ConversationStore,
    generations,
    generationLog: { unfinished: vi.fn(async () => []) },
    publisher: {
      observe: (observer) => {
        listener = observer;
        return () => undefined;
      },
    },
    logger: { warn: vi.fn() } as unknown as FastifyBaseLogger,
    runningLookbackMs: 60_000,
  });
  const publish = (type: string, payload: Record<string, unknown>) =>
    listener?.({ id: 1, topic: 'user:u1', type, ts: new Date().toISOString(), payload } as EventRecord);
  return { service, store, generations, settled, publish };
}

describe('ConversationService, observing outcomes', () => {
  it('records a completed answer with its final text, without reading the generation', async () => {
    const { publish, settled, generations } = setup({ g1: 'c1' });
    publish('ai.generation.completed', { generationId: 'g1', text: 'All of it.' });
    await vi.waitFor(() => expect(settled).toHaveLength(1));
    expect(settled[0]).toEqual({ generationId: 'g1', outcome: { status: 'completed', answer: 'All of it.' } });
    expect(generations.get).not.toHaveBeenCalled();
  });

  it('records a cancelled chat turn with the text it had', async () => {
    const { publish, settled } = setup({ g2: 'c1' });
    publish('ai.generation.cancelled', { generationId: 'g2' });
    await vi.waitFor(() => expect(settled).toHaveLength(1));
    expect(settled[0]).toEqual({ generationId: 'g2', outcome: { status: 'cancelled', answer: 'text of g2' } });
  });

  it('reads nothing more for a cancelled generation that is no chat turn', async () => {
    const { publish, store, generations, settled } = setup({});
    publish('ai.generation.cancelled', { generationId: 'g3' });
    await vi.waitFor(() => expect(store.conversationsOf).toHaveBeenCalledWith('u1', ['g3']));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(generations.get).not.toHaveBeenCalled();
    expect(settled).toEqual([]);
  });
});
