import type {
  ConversationView,
  GenerationStatus,
  ConversationsPage,
  RunningGeneration,
  RunningGenerationsResponse,
} from '@infinitescribe/protocol';
import type { UIMessage } from 'ai';
import { ApiError, requestJson, type ServerAccess } from './authorized-fetch.js';

/**
 * The conversations of the signed-in user (docs/http-api.md, "Conversations"): what another tab
 * or device lists and reopens.
 * @example
 * const api = createConversationsApi({ url: '', getToken });
 * const { conversations } = await api.list();
 * const messages = conversationMessages(await api.get(conversations[0].conversationId));
 */
export interface ConversationsApi {
  /** Most recently active first; pass `nextCursor` back as `cursor` for the next page. */
  list(options?: { limit?: number; cursor?: string; signal?: AbortSignal }): Promise<ConversationsPage>;
  /** The conversation with its turns, or `undefined` when the user has none of that id. */
  get(conversationId: string, options?: { signal?: AbortSignal }): Promise<ConversationView | undefined>;
  /** Deletes it (its running answer is cancelled); `false` when there was none. */
  delete(conversationId: string): Promise<boolean>;
  /** The user's generations running now, with the conversation each answers. */
  running(options?: { signal?: AbortSignal }): Promise<RunningGeneration[]>;
}

/** {@link ConversationsApi} over HTTP. */
export function createConversationsApi(access: ServerAccess): ConversationsApi {
  const path = (conversationId: string) => `/api/ai/conversations/${encodeURIComponent(conversationId)}`;
  const signalOf = (options?: { signal?: AbortSignal }) => (options?.signal ? { signal: options.signal } : {});
  return {
    async list(options = {}) {
      const query = new URLSearchParams();
      if (options.limit !== undefined) query.set('limit', String(options.limit));
      if (options.cursor !== undefined) query.set('cursor', options.cursor);
      const suffix = query.size > 0 ? `?${query.toString()}` : '';
      return (await requestJson(
        access,
        'GET',
        `/api/ai/conversations${suffix}`,
        signalOf(options),
      )) as ConversationsPage;
    },
    async get(conversationId, options) {
      try {
        return (await requestJson(access, 'GET', path(conversationId), signalOf(options))) as ConversationView;
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) return undefined;
        throw error;
      }
    },
    async delete(conversationId) {
      try {
        await requestJson(access, 'DELETE', path(conversationId));
        return true;
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) return false;
        throw error;
      }
    },
    async running(options) {
      const body = (await requestJson(
        access,
        'GET',
        '/api/ai/generations?status=running',
        signalOf(options),
      )) as RunningGenerationsResponse;
      return body.generations;
    },
  };
}

/**
 * A stored conversation as `useChat` messages: per turn, the user message (id `<generationId>:user`)
 * and the answer (id = its generation id). A running turn's answer holds its text so far: the
 * transport's `reconnectToStream` replaces it with the live answer, which starts from that text.
 * @example useChat({ id, messages: conversationMessages(view), transport, resume: true });
 */
export function conversationMessages(view: ConversationView): UIMessage[] {
  const messages: UIMessage[] = [];
  for (const turn of view.turns) {
    messages.push({ id: `${turn.generationId}:user`, role: 'user', parts: [{ type: 'text', text: turn.prompt }] });
    // A running answer with no text yet is left to useChat's resume; a settled one is kept even
    // empty, so that a page can say it was stopped or failed (toGenerationMessages skips it).
    if (turn.text === '' && turn.status === 'running') continue;
    messages.push({
      id: turn.generationId,
      role: 'assistant',
      metadata: answerMetadata(turn.status, turn.error),
      parts: [{ type: 'text', text: turn.text, state: turn.status === 'running' ? 'streaming' : 'done' }],
    });
  }
  return messages;
}

/**
 * The `metadata` of an assistant message: how its generation stands. `useChat` keeps an answer
 * that was stopped or failed as text like any other; this tells a page to mark it.
 */
export interface AnswerMetadata {
  status: GenerationStatus;
  /** Why a failed answer failed, as the server tells users. */
  error?: string;
}

/** The {@link AnswerMetadata} of a message, if it carries one (assistant messages of our answers do). */
export function answerMetadataOf(message: UIMessage): AnswerMetadata | undefined {
  const metadata = message.metadata as Partial<AnswerMetadata> | null | undefined;
  return typeof metadata?.status === 'string' ? (metadata as AnswerMetadata) : undefined;
}

/** @internal The metadata both the stored turns and the live answers give. */
export function answerMetadata(status: GenerationStatus, error?: string): AnswerMetadata {
  return error === undefined ? { status } : { status, error };
}

/**
 * What a chat shows while `useChat` resumes an answer after a reload: the AI SDK clears a resumed
 * message before the first chunk refills it, so the answer would flash empty. Gives `messages` with
 * each assistant message that is still shorter than the text it was opened with (a prefix of it)
 * showing that text instead; once the live answer has caught up, it is shown as it is.
 * @example const shown = withOpenedText(messages, initialMessages);
 */
export function withOpenedText(messages: UIMessage[], opened: readonly UIMessage[]): UIMessage[] {
  const openedText = new Map(
    opened.filter((message) => message.role === 'assistant').map((message) => [message.id, textOf(message)]),
  );
  if (openedText.size === 0) return messages;
  return messages.map((message) => {
    const before = openedText.get(message.id);
    if (before === undefined || message.role !== 'assistant') return message;
    const now = textOf(message);
    if (now.length >= before.length || !before.startsWith(now)) return message;
    return { ...message, parts: [{ type: 'text', text: before, state: 'streaming' }] };
  });
}

function textOf(message: UIMessage): string {
  return message.parts.map((part) => (part.type === 'text' ? part.text : '')).join('');
}
