import type {
  ConversationSummary,
  ConversationTurn,
  ConversationView,
  ConversationsPage,
  RunningGeneration,
} from '@infinitescribe/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type {
  ConversationStore,
  StoredConversation,
  StoredTurn,
  TurnStatus,
} from '../../adapters/store/conversation-store.js';
import type { ChatMessage } from '../../adapters/ai/ai-provider.js';
import type { EventRecord } from '../../core/event-record.js';
import { AppError, UnavailableError } from '../../core/errors.js';
import type { EventPublisher } from '../events/event-publisher.js';
import type { GenerationLog } from '../generations/generation-log.js';
import type { GenerationService, GenerationView } from '../generations/generation-service.js';

/** `error` of a turn whose generation is no longer in the log (past JOURNAL_RETENTION_MS), never settled. */
const GONE_ERROR = 'the answer is no longer available';
/** Outcomes go to their user's topic, `user:<id>`. */
const USER_TOPIC_PREFIX = 'user:';
/** Longest title, cut from the first user message. */
const MAX_TITLE_CHARS = 80;

/** The outcome event of a generation, and the turn status it settles. */
const OUTCOMES: Partial<Record<string, Exclude<TurnStatus, 'running'>>> = {
  'ai.generation.completed': 'completed',
  'ai.generation.failed': 'failed',
  'ai.generation.cancelled': 'cancelled',
};

/** Options of {@link ConversationService}. */
export interface ConversationServiceOptions {
  store: ConversationStore;
  generations: Pick<GenerationService, 'get' | 'cancel'>;
  /** Where the generations still running are found (the journal). */
  generationLog: Pick<GenerationLog, 'unfinished'>;
  publisher: Pick<EventPublisher, 'observe'>;
  logger: FastifyBaseLogger;
  /**
   * How far back a generation may have started and still run (AI_TOTAL_TIMEOUT_MS: one running
   * longer fails), for `GET /api/ai/generations?status=running`.
   */
  runningLookbackMs: number;
  now?: () => number;
}

/**
 * Chat conversations (useChat on our generations): each `POST /api/ai/generations` with a
 * `conversationId` is a turn, recorded per user; the turn's answer is recorded when its generation
 * settles. That is learnt by observing the publisher (every outcome this instance publishes: its
 * own generations, a cancel taken here for another instance, an orphan failed here), not by
 * editing the generation's lifecycle; and a read that still finds a turn running asks the
 * generation service, so an outcome published where the observer did not run (an instance
 * killed between its publish and the store write) is recorded then.
 */
export class ConversationService {
  private readonly stopObserving: () => void;
  private readonly now: () => number;

  constructor(private readonly options: ConversationServiceOptions) {
    this.now = options.now ?? Date.now;
    this.stopObserving = options.publisher.observe((record) => this.observe(record));
  }

  /**
   * Records generation `generationId` as a turn of `conversationId` of `userId`: the last user
   * message of `messages` (the conversation is created on its first turn, titled by its first
   * user message).
   * @throws UnavailableError when the store fails.
   */
  async recordTurn(
    userId: string,
    conversationId: string,
    generationId: string,
    messages: readonly ChatMessage[],
  ): Promise<void> {
    const users = messages.filter((message) => message.role === 'user');
    await this.stored(() =>
      this.options.store.addTurn({
        userId,
        conversationId,
        generationId,
        prompt: users.at(-1)?.content ?? '',
        title: titleOf(users[0]?.content ?? ''),
      }),
    );
    // A short answer may have settled before its turn was written, its outcome finding no row.
    const view = await this.options.generations.get(userId, generationId).catch(() => undefined);
    if (view && view.status !== 'running') this.settle(generationId, view.status, view.text, view.error);
  }

  /** The user's conversations, most recently active first; `cursor` from the previous page. */
  async list(userId: string, options: { limit: number; cursor?: string }): Promise<ConversationsPage> {
    const after = options.cursor === undefined ? undefined : parseCursor(options.cursor);
    // One more than asked: whether a next page exists, without a count.
    const rows = await this.stored(() =>
      this.options.store.list(userId, { limit: options.limit + 1, ...(after ? { after } : {}) }),
    );
    const page = rows.slice(0, options.limit);
    const last = page.at(-1);
    // A turn still running in the store is checked (and settled) like a read of its conversation does.
    const conversations = await Promise.all(page.map((row) => this.withCurrentRunning(userId, toSummary(row))));
    return {
      conversations,
      ...(rows.length > options.limit && last ? { nextCursor: cursorOf(last) } : {}),
    };
  }

  /**
   * One conversation of the user with its turns; a running turn carries its text so far.
   * @throws AppError `not_found` when the user has no conversation of that id.
   */
  async get(userId: string, conversationId: string): Promise<ConversationView> {
    const found = await this.stored(() => this.options.store.get(userId, conversationId));
    if (!found) throw notFound(conversationId);
    const turns = await Promise.all(found.turns.map((turn) => this.current(userId, turn)));
    const running = turns.findLast((turn) => turn.status === 'running');
    const { turnCount: _turnCount, runningGenerationId: _running, ...conversation } = toSummary(found.conversation);
    return { ...conversation, ...(running ? { runningGenerationId: running.generationId } : {}), turns };
  }

  /**
   * Deletes a conversation of the user; its running turn's generation is cancelled first (nobody
   * could reopen its answer).
   * @throws AppError `not_found` when the user has no conversation of that id.
   */
  async delete(userId: string, conversationId: string): Promise<void> {
    const found = await this.stored(() => this.options.store.get(userId, conversationId));
    if (!found) throw notFound(conversationId);
    for (const turn of found.turns) {
      if (turn.status !== 'running') continue;
      await this.options.generations.cancel(userId, turn.generationId).catch((error: unknown) => {
        this.options.logger.warn(
          { err: error, generationId: turn.generationId },
          'deleted a conversation whose answer could not be cancelled',
        );
      });
    }
    await this.stored(() => this.options.store.delete(userId, conversationId));
  }

  /** The user's generations still running (any, chat turns or not), oldest first. */
  async running(userId: string): Promise<RunningGeneration[]> {
    const mine = await this.stored(() =>
      this.options.generationLog.unfinished(this.now() - this.options.runningLookbackMs, userId),
    );
    // Each is confirmed by the generation service: one whose outcome is not stored yet, or whose
    // instance died (failed now, as any read of it does), is not running.
    const views = await Promise.all(
      mine.map((generation) => this.options.generations.get(userId, generation.generationId).catch(() => undefined)),
    );
    const running = views.filter((view) => view?.status === 'running').map((view) => view!);
    const conversations = await this.stored(() =>
      this.options.store.conversationsOf(
        userId,
        running.map((view) => view.generationId),
      ),
    );
    return running.map((view) => {
      const conversationId = conversations.get(view.generationId);
      return {
        generationId: view.generationId,
        status: 'running',
        text: view.text,
        ...(conversationId === undefined ? {} : { conversationId }),
      };
    });
  }

  private async withCurrentRunning(userId: string, summary: ConversationSummary): Promise<ConversationSummary> {
    const generationId = summary.runningGenerationId;
    if (generationId === undefined) return summary;
    const view = await this.options.generations.get(userId, generationId).catch(() => undefined);
    if (view?.status === 'running') return summary;
    if (view) this.settle(generationId, view.status, view.text, view.error);
    const { runningGenerationId: _settled, ...rest } = summary;
    return rest;
  }

  /** Stops observing the publisher. */
  stop(): void {
    this.stopObserving();
  }

  private observe(record: EventRecord): void {
    const status = OUTCOMES[record.type];
    if (!status) return;
    const { generationId, text, error } = record.payload as { generationId: string; text?: string; error?: string };
    if (text !== undefined || !record.topic.startsWith(USER_TOPIC_PREFIX)) {
      this.settle(generationId, status, text ?? '', error);
      return;
    }
    // `cancelled` (and `failed` from an older version) carries no text: the answer so far is asked
    // for, which reads the generation's events, so only for a generation that is a chat turn.
    const userId = record.topic.slice(USER_TOPIC_PREFIX.length);
    void this.options.store.conversationsOf(userId, [generationId]).then(
      async (turns) => {
        if (!turns.has(generationId)) return;
        const view = await this.options.generations.get(userId, generationId).catch(() => undefined);
        this.settle(generationId, status, view?.text ?? '', error);
      },
      // The store failed: the next read of the conversation settles the turn.
      (storeError: unknown) => this.warnUnsettled(storeError, generationId),
    );
  }

  private settle(generationId: string, status: Exclude<TurnStatus, 'running'>, answer: string, error?: string): void {
    // A generation that is no chat turn changes no row; one statement either way.
    this.options.store
      .settleTurn(generationId, { status, answer, ...(error === undefined ? {} : { error }) })
      .catch((storeError: unknown) => this.warnUnsettled(storeError, generationId));
  }

  private warnUnsettled(storeError: unknown, generationId: string): void {
    this.options.logger.warn({ err: storeError, generationId }, 'turn outcome not recorded; the next read records it');
  }

  /** A turn as the API shows it; a turn still running in the store is checked with its generation. */
  private async current(userId: string, turn: StoredTurn): Promise<ConversationTurn> {
    const base = { generationId: turn.generationId, prompt: turn.prompt, createdAt: turn.createdAt };
    if (turn.status !== 'running') {
      return {
        ...base,
        status: turn.status,
        text: turn.answer,
        ...(turn.error === undefined ? {} : { error: turn.error }),
      };
    }
    let view: GenerationView;
    try {
      view = await this.options.generations.get(userId, turn.generationId);
    } catch (error) {
      if (!(error instanceof AppError && error.code === 'not_found')) throw error;
      // Its generation is gone from the log (expired): nothing will settle it.
      this.settle(turn.generationId, 'failed', '', GONE_ERROR);
      return { ...base, status: 'failed', text: '', error: GONE_ERROR };
    }
    if (view.status !== 'running') this.settle(turn.generationId, view.status, view.text, view.error);
    return {
      ...base,
      status: view.status,
      text: view.text,
      ...(view.error === undefined ? {} : { error: view.error }),
    };
  }

  private async stored<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof AppError) throw error;
      this.options.logger.warn({ err: error }, 'conversation store operation failed');
      throw new UnavailableError('store_unavailable', 'the store is unavailable; try again', error);
    }
  }
}

function notFound(conversationId: string): AppError {
  return new AppError('not_found', `no conversation ${conversationId}`);
}

function titleOf(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length <= MAX_TITLE_CHARS ? line : `${line.slice(0, MAX_TITLE_CHARS - 1)}…`;
}

function toSummary(row: StoredConversation): ConversationSummary {
  return { ...row };
}

/** Opaque to clients: where the last page ended (its last conversation's activity time and id). */
function cursorOf(row: StoredConversation): string {
  return Buffer.from(JSON.stringify([row.updatedAt, row.conversationId])).toString('base64url');
}

function parseCursor(cursor: string): { updatedAt: string; conversationId: string } {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(parsed) &&
      parsed.length === 2 &&
      typeof parsed[0] === 'string' &&
      !Number.isNaN(Date.parse(parsed[0])) &&
      typeof parsed[1] === 'string'
    ) {
      return { updatedAt: parsed[0], conversationId: parsed[1] };
    }
  } catch {
    // Not base64url JSON: the same answer as any other cursor this server did not give.
  }
  throw new AppError('invalid_request', 'cursor is not one this server gave (use nextCursor as it is)');
}
