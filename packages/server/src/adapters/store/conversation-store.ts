import type { ConversationSummary } from '@infinitescribe/protocol';

/** How a turn's generation ended, or that it still runs. */
export type TurnStatus = 'running' | 'completed' | 'failed' | 'cancelled';

/** A new turn: the user message a generation answers, in a conversation of `userId`. */
export interface NewTurn {
  userId: string;
  conversationId: string;
  generationId: string;
  /** The user message of the turn. */
  prompt: string;
  /** The conversation's title if this turn creates it (later turns keep the first title). */
  title: string;
}

/** A conversation as listed, newest activity first: exactly what the HTTP answer lists. */
export type StoredConversation = ConversationSummary;

/** One stored turn; `answer` is empty until the turn settles. */
export interface StoredTurn {
  generationId: string;
  prompt: string;
  status: TurnStatus;
  answer: string;
  error?: string;
  createdAt: string;
}

/** Where a page of {@link ConversationStore.list} starts: after this conversation. */
export interface ConversationCursor {
  updatedAt: string;
  conversationId: string;
}

/**
 * The chat conversations of each user: their turns, and each turn's answer once its generation
 * settles. Same SQL and migrations on every adapter (`004-conversations.sql`); everything is read
 * and written per user, so one user can never reach another's conversation, even by its id.
 */
export interface ConversationStore {
  /** Records a running turn, creating the conversation on its first turn; idempotent per generation. */
  addTurn(turn: NewTurn): Promise<void>;
  /**
   * Records how the turn of `generationId` ended. Only a running turn changes: the first outcome
   * stays (a late or repeated one is ignored). Returns whether a turn changed.
   */
  settleTurn(
    generationId: string,
    outcome: { status: Exclude<TurnStatus, 'running'>; answer: string; error?: string },
  ): Promise<boolean>;
  /** The user's conversations, most recently active first, after `cursor`. */
  list(userId: string, options: { limit: number; after?: ConversationCursor }): Promise<StoredConversation[]>;
  /** One conversation of the user with its turns, oldest first; `undefined` when the user has none of that id. */
  get(
    userId: string,
    conversationId: string,
  ): Promise<{ conversation: StoredConversation; turns: StoredTurn[] } | undefined>;
  /** Deletes a conversation of the user and its turns; false when the user has none of that id. */
  delete(userId: string, conversationId: string): Promise<boolean>;
  /** The conversation of each of these generations of the user that answer a turn (by generation id). */
  conversationsOf(userId: string, generationIds: readonly string[]): Promise<Map<string, string>>;
  /** Deletes conversations with no turn since `cutoff`; returns how many. */
  deleteOlderThan(cutoff: Date): Promise<number>;
}
