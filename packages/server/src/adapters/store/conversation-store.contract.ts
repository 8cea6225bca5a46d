import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventStore } from './event-store.js';
import type { ConversationStore, NewTurn } from './conversation-store.js';

/** How a suite obtains stores of the adapter under test (the conversations live in the event store's database). */
export interface ConversationStoreContractHooks {
  /** A fresh, initialised store with no conversations. */
  create: () => Promise<EventStore>;
  /** Runs after each test, once the store is closed. */
  cleanup?: () => Promise<void>;
}

const turn = (overrides: Partial<NewTurn> = {}): NewTurn => ({
  userId: 'u1',
  conversationId: 'chat-1',
  generationId: `gen-${Math.random().toString(36).slice(2)}`,
  prompt: 'Hello',
  title: 'Hello',
  ...overrides,
});

/**
 * The behaviour every {@link ConversationStore} adapter must show; PGlite and PostgreSQL run it
 * from their test files.
 */
export function describeConversationStoreContract(name: string, hooks: ConversationStoreContractHooks): void {
  describe(`ConversationStore contract: ${name}`, () => {
    let store: EventStore;
    let conversations: ConversationStore;

    beforeEach(async () => {
      store = await hooks.create();
      conversations = store.conversations;
    });

    afterEach(async () => {
      await store.close();
      await hooks.cleanup?.();
    });

    it('keeps turns in order, the first title, and the answer once the turn settles', async () => {
      await conversations.addTurn(turn({ generationId: 'g1', prompt: 'First question', title: 'First question' }));
      await conversations.addTurn(turn({ generationId: 'g2', prompt: 'Second', title: 'Second' }));
      expect(await conversations.settleTurn('g1', { status: 'completed', answer: 'An answer ✓' })).toBe(true);

      const found = await conversations.get('u1', 'chat-1');
      expect(found?.conversation).toMatchObject({
        conversationId: 'chat-1',
        title: 'First question',
        turnCount: 2,
        runningGenerationId: 'g2',
      });
      expect(
        found?.turns.map(({ generationId, prompt, status, answer }) => ({ generationId, prompt, status, answer })),
      ).toEqual([
        { generationId: 'g1', prompt: 'First question', status: 'completed', answer: 'An answer ✓' },
        { generationId: 'g2', prompt: 'Second', status: 'running', answer: '' },
      ]);
      expect(Date.parse(found?.turns[0]?.createdAt ?? '')).not.toBeNaN();
    });

    it('keeps the first outcome of a turn: a late or repeated one changes nothing', async () => {
      await conversations.addTurn(turn({ generationId: 'g1' }));
      expect(await conversations.settleTurn('g1', { status: 'failed', answer: 'partial', error: 'boom' })).toBe(true);
      expect(await conversations.settleTurn('g1', { status: 'completed', answer: 'other' })).toBe(false);
      expect(await conversations.settleTurn('unknown', { status: 'completed', answer: 'x' })).toBe(false);
      const found = await conversations.get('u1', 'chat-1');
      expect(found?.turns[0]).toMatchObject({ status: 'failed', answer: 'partial', error: 'boom' });
      expect(found?.conversation.runningGenerationId).toBeUndefined();
    });

    it('records a turn once per generation', async () => {
      await conversations.addTurn(turn({ generationId: 'g1' }));
      await conversations.addTurn(turn({ generationId: 'g1' }));
      expect((await conversations.get('u1', 'chat-1'))?.turns).toHaveLength(1);
    });

    it('scopes everything to its user: the same id of another user is another conversation, unreachable', async () => {
      await conversations.addTurn(turn({ userId: 'u1', generationId: 'g1', title: 'mine' }));
      expect(await conversations.get('u2', 'chat-1')).toBeUndefined();
      expect(await conversations.delete('u2', 'chat-1')).toBe(false);
      expect(await conversations.list('u2', { limit: 10 })).toEqual([]);
      expect((await conversations.conversationsOf('u2', ['g1'])).size).toBe(0);
      await conversations.addTurn(turn({ userId: 'u2', generationId: 'g2', title: 'theirs' }));
      expect((await conversations.get('u1', 'chat-1'))?.conversation.title).toBe('mine');
      expect((await conversations.get('u2', 'chat-1'))?.conversation.title).toBe('theirs');
      expect(await conversations.conversationsOf('u1', ['g1', 'g2'])).toEqual(new Map([['g1', 'chat-1']]));
    });

    it('lists the most recently active first, in pages that neither skip nor repeat', async () => {
      for (let index = 0; index < 5; index++) {
        await conversations.addTurn(
          turn({ conversationId: `c${index}`, generationId: `g${index}`, title: `t${index}` }),
        );
      }
      // A new turn moves c1 to the front.
      await new Promise((resolve) => setTimeout(resolve, 5));
      await conversations.addTurn(turn({ conversationId: 'c1', generationId: 'g-late' }));
      const seen: string[] = [];
      let after: { updatedAt: string; conversationId: string } | undefined;
      for (;;) {
        const page = await conversations.list('u1', { limit: 2, ...(after ? { after } : {}) });
        seen.push(...page.map((conversation) => conversation.conversationId));
        const last = page.at(-1);
        if (page.length < 2 || !last) break;
        after = { updatedAt: last.updatedAt, conversationId: last.conversationId };
      }
      expect(seen[0]).toBe('c1');
      expect([...seen].sort()).toEqual(['c0', 'c1', 'c2', 'c3', 'c4']);
      expect((await conversations.list('u1', { limit: 1 }))[0]?.turnCount).toBe(2);
    });

    it('deletes a conversation with its turns, and those idle since a cutoff', async () => {
      await conversations.addTurn(turn({ conversationId: 'old', generationId: 'g1' }));
      await conversations.addTurn(turn({ conversationId: 'gone', generationId: 'g2' }));
      expect(await conversations.delete('u1', 'gone')).toBe(true);
      expect(await conversations.get('u1', 'gone')).toBeUndefined();
      expect((await conversations.conversationsOf('u1', ['g2'])).size).toBe(0);
      expect(await conversations.deleteOlderThan(new Date(Date.now() - 60_000))).toBe(0);
      expect(await conversations.deleteOlderThan(new Date(Date.now() + 60_000))).toBe(1);
      expect(await conversations.list('u1', { limit: 10 })).toEqual([]);
    });
  });
}
