import type {
  ConversationCursor,
  ConversationStore,
  NewTurn,
  StoredConversation,
  StoredTurn,
  TurnStatus,
} from './conversation-store.js';
import type { SqlExecutor } from './sql-database.js';

const NOW = "date_trunc('milliseconds', now())";
/** A conversation's columns with its turn count and the generation of its last turn while running. */
const SUMMARY = `c.id, c.title, c.created_at, c.updated_at,
  (SELECT count(*) FROM conversation_turns t WHERE t.user_id = c.user_id AND t.conversation_id = c.id) AS turn_count,
  (SELECT t.generation_id FROM conversation_turns t WHERE t.user_id = c.user_id AND t.conversation_id = c.id
     AND t.status = 'running' ORDER BY t.turn_no DESC LIMIT 1) AS running_generation_id`;

/** Every statement of the conversation store, shared verbatim by PGlite and PostgreSQL. */
export const CONVERSATION_STORE_SQL = {
  // One statement: the conversation (created, or its activity moved on) and the turn together.
  addTurn: `WITH conversation AS (
      INSERT INTO conversations (user_id, id, title) VALUES ($1, $2, $3)
      ON CONFLICT (user_id, id) DO UPDATE SET updated_at = ${NOW}
      RETURNING user_id, id
    )
    INSERT INTO conversation_turns (generation_id, user_id, conversation_id, prompt, status)
    SELECT $4, user_id, id, $5, 'running' FROM conversation
    ON CONFLICT (generation_id) DO NOTHING`,
  settleTurn: `UPDATE conversation_turns SET status = $2, answer = $3, error = $4
    WHERE generation_id = $1 AND status = 'running'`,
  list: `SELECT ${SUMMARY} FROM conversations c WHERE c.user_id = $1
    ORDER BY c.updated_at DESC, c.id DESC LIMIT $2`,
  listAfter: `SELECT ${SUMMARY} FROM conversations c WHERE c.user_id = $1
    AND (c.updated_at, c.id) < ($3::timestamptz, $4) ORDER BY c.updated_at DESC, c.id DESC LIMIT $2`,
  get: `SELECT ${SUMMARY} FROM conversations c WHERE c.user_id = $1 AND c.id = $2`,
  turns: `SELECT generation_id, prompt, status, answer, error, created_at FROM conversation_turns
    WHERE user_id = $1 AND conversation_id = $2 ORDER BY turn_no`,
  delete: 'DELETE FROM conversations WHERE user_id = $1 AND id = $2',
  conversationsOf: `SELECT generation_id, conversation_id FROM conversation_turns
    WHERE user_id = $1 AND generation_id = ANY($2)`,
  deleteOlderThan: 'DELETE FROM conversations WHERE updated_at < $1::timestamptz',
} as const;

/**
 * {@link ConversationStore} in SQL, on the event store's database: the event store hands it its
 * own statement path (lifecycle checks, breaker), so conversations live and fail with it.
 */
export class SqlConversationStore implements ConversationStore {
  constructor(private readonly db: SqlExecutor) {}

  async addTurn(turn: NewTurn): Promise<void> {
    await this.db.query(CONVERSATION_STORE_SQL.addTurn, [
      turn.userId,
      turn.conversationId,
      turn.title,
      turn.generationId,
      turn.prompt,
    ]);
  }

  async settleTurn(
    generationId: string,
    outcome: { status: Exclude<TurnStatus, 'running'>; answer: string; error?: string },
  ): Promise<boolean> {
    const { rowCount } = await this.db.query(CONVERSATION_STORE_SQL.settleTurn, [
      generationId,
      outcome.status,
      outcome.answer,
      outcome.error ?? null,
    ]);
    return rowCount > 0;
  }

  async list(userId: string, options: { limit: number; after?: ConversationCursor }): Promise<StoredConversation[]> {
    const { after } = options;
    const { rows } =
      after === undefined
        ? await this.db.query(CONVERSATION_STORE_SQL.list, [userId, options.limit])
        : await this.db.query(CONVERSATION_STORE_SQL.listAfter, [
            userId,
            options.limit,
            after.updatedAt,
            after.conversationId,
          ]);
    return rows.map(toConversation);
  }

  async get(
    userId: string,
    conversationId: string,
  ): Promise<{ conversation: StoredConversation; turns: StoredTurn[] } | undefined> {
    const { rows } = await this.db.query(CONVERSATION_STORE_SQL.get, [userId, conversationId]);
    const row = rows[0];
    if (!row) return undefined;
    const turns = await this.db.query(CONVERSATION_STORE_SQL.turns, [userId, conversationId]);
    return { conversation: toConversation(row), turns: turns.rows.map(toTurn) };
  }

  async delete(userId: string, conversationId: string): Promise<boolean> {
    const { rowCount } = await this.db.query(CONVERSATION_STORE_SQL.delete, [userId, conversationId]);
    return rowCount > 0;
  }

  async conversationsOf(userId: string, generationIds: readonly string[]): Promise<Map<string, string>> {
    if (generationIds.length === 0) return new Map();
    const { rows } = await this.db.query(CONVERSATION_STORE_SQL.conversationsOf, [userId, [...generationIds]]);
    return new Map(rows.map((row) => [String(row.generation_id), String(row.conversation_id)]));
  }

  async deleteOlderThan(cutoff: Date): Promise<number> {
    const { rowCount } = await this.db.query(CONVERSATION_STORE_SQL.deleteOlderThan, [cutoff.toISOString()]);
    return rowCount;
  }
}

function toConversation(row: Record<string, unknown>): StoredConversation {
  const conversation: StoredConversation = {
    conversationId: String(row.id),
    title: String(row.title),
    createdAt: toIso(row.created_at),
    updatedAt: toIso(row.updated_at),
    turnCount: Number(row.turn_count),
  };
  if (typeof row.running_generation_id === 'string') conversation.runningGenerationId = row.running_generation_id;
  return conversation;
}

function toTurn(row: Record<string, unknown>): StoredTurn {
  const turn: StoredTurn = {
    generationId: String(row.generation_id),
    prompt: String(row.prompt),
    // The column only ever holds the four statuses settleTurn and addTurn write.
    status: String(row.status) as TurnStatus,
    answer: String(row.answer),
    createdAt: toIso(row.created_at),
  };
  if (typeof row.error === 'string') turn.error = row.error;
  return turn;
}

function toIso(value: unknown): string {
  const date = value instanceof Date ? value : new Date(String(value));
  if (Number.isNaN(date.getTime())) throw new Error(`invalid timestamp ${String(value)}`);
  return date.toISOString();
}
