/**
 * @module `GenerationChatTransport`: the AI SDK's `useChat` on our generations. A chat turn is one
 * `POST /api/ai/generations` (`messages` and the chat id as `conversationId`); its answer is read
 * from our SSE stream through the client's generation store, so it gets everything that stream
 * does: resume by last event id after a drop or a reload (the text so far comes back as one piece,
 * never replayed from the first chunk and never doubled), the server's continuation after a
 * restart, and a `stop()` that cancels the generation on the server instead of only disconnecting.
 */
import type { GenerationStore, LoadedGenerationView } from '@infinitescribe/client';
import type { GenerationMessage, GenerationRequest } from '@infinitescribe/protocol';
import type { ChatRequestOptions, ChatTransport, UIMessage, UIMessageChunk } from 'ai';
import { requestJson, type ServerAccess } from './authorized-fetch.js';
import type { ConversationView } from '@infinitescribe/protocol';
import {
  answerMetadata,
  conversationMessages,
  createConversationsApi,
  type ConversationsApi,
} from './conversations-api.js';

/** Request fields sent with every turn (besides `messages` and `conversationId`). */
export type ChatGenerationOptions = Pick<
  GenerationRequest,
  'system' | 'temperature' | 'model' | 'maxTokens' | 'documentId'
>;

/** Options of {@link GenerationChatTransport}. */
export interface GenerationChatTransportOptions extends ServerAccess {
  /**
   * The store the answers are read from: fed by an SSE client (`store.attach(client)`; the
   * `SSEProvider` does it for its own, see `useGenerationChatTransport`).
   */
  generations: GenerationStore;
  /** Sent with every turn; `useChat`'s per-call `body` is merged over it. */
  request?: ChatGenerationOptions | ((chatId: string) => ChatGenerationOptions);
  /**
   * Reload an answer that has shown no event for this long (its events were missed while the
   * stream was away and not resumed yet). Default 3 000 ms.
   */
  reloadPendingAfterMs?: number;
}

/**
 * `ChatTransport` (AI SDK UI, `ai` v5+) over our resumable generations.
 * @example
 * const transport = new GenerationChatTransport({ url: '', getToken, generations });
 * const { messages, sendMessage, stop } = useChat({ id: chatId, transport, resume: true });
 */
export class GenerationChatTransport implements ChatTransport<UIMessage> {
  /** A reconnect gives the answer from its text so far, not a replay of every chunk. */
  readonly resumeStreamIsReplay = false;
  readonly conversations: ConversationsApi;
  /** Per chat: how many reconnects started, to tell a superseded reconnect from a stop. */
  private readonly reconnects = new Map<string, number>();
  /** Per chat: the answer that was running when {@link messagesOf} opened it. */
  private readonly opened = new Map<string, string>();

  constructor(private readonly options: GenerationChatTransportOptions) {
    this.conversations = createConversationsApi(options);
  }

  async sendMessages(
    options: {
      trigger: 'submit-message' | 'regenerate-message';
      chatId: string;
      messageId: string | undefined;
      messages: UIMessage[];
      abortSignal: AbortSignal | undefined;
    } & ChatRequestOptions,
  ): Promise<ReadableStream<UIMessageChunk>> {
    const { chatId, abortSignal } = options;
    this.opened.delete(chatId);
    const configured = typeof this.options.request === 'function' ? this.options.request(chatId) : this.options.request;
    const body = {
      ...configured,
      ...(options.body as ChatGenerationOptions | undefined),
      messages: toGenerationMessages(options.messages),
      conversationId: chatId,
    };
    const headers = headersOf(options.headers);
    const created = (await requestJson(this.options, 'POST', '/api/ai/generations', {
      body,
      ...(headers ? { headers } : {}),
    })) as { generationId: string };
    // Sent without the signal: a stop during the request must still learn the id, to cancel it.
    return this.answer(created.generationId, abortSignal, () => true);
  }

  /**
   * The messages to open a stored conversation with (`conversationMessages`), remembering its
   * running answer: if that answer ends before `useChat` reconnects, the reconnect still brings
   * its final text instead of leaving the text it was opened with.
   * @example useChat({ id, transport, messages: transport.messagesOf(view), resume: true });
   */
  messagesOf(view: ConversationView): UIMessage[] {
    if (view.runningGenerationId) this.opened.set(view.conversationId, view.runningGenerationId);
    return conversationMessages(view);
  }

  async reconnectToStream(
    options: { chatId: string; abortSignal?: AbortSignal } & ChatRequestOptions,
  ): Promise<ReadableStream<UIMessageChunk> | null> {
    const { chatId, abortSignal } = options;
    const epoch = (this.reconnects.get(chatId) ?? 0) + 1;
    this.reconnects.set(chatId, epoch);
    const view = await this.conversations.get(chatId, abortSignal ? { signal: abortSignal } : {});
    // Kept until the next turn: a remount (React's StrictMode) reconnects twice.
    const opened = this.opened.get(chatId);
    const generationId =
      view?.runningGenerationId ?? view?.turns.find((turn) => turn.generationId === opened)?.generationId;
    if (!generationId) return null;
    // The text so far first, so the answer goes on from there instead of growing from nothing.
    await this.reload(generationId).catch(() => undefined);
    // useChat aborts a reconnect both for stop() and when it starts another reconnect (a remount,
    // coming back online); only the first is a stop. The other starts right after the abort.
    return this.answer(generationId, abortSignal, () => this.reconnects.get(chatId) === epoch);
  }

  /** Cancels generation `generationId` on the server (what `stop()` does). */
  async cancel(generationId: string): Promise<void> {
    await requestJson(this.options, 'POST', `/api/ai/generations/${encodeURIComponent(generationId)}/cancel`);
  }

  /** The answer of `generationId` as UI message chunks, from the text the store has now. */
  private answer(
    generationId: string,
    signal: AbortSignal | undefined,
    isStop: () => boolean,
  ): ReadableStream<UIMessageChunk> {
    const { generations } = this.options;
    const textId = `text-${generationId}`;
    const cleanups: (() => void)[] = [];
    let done = false;
    const cleanup = () => {
      done = true;
      for (const stop of cleanups.splice(0)) stop();
    };
    return new ReadableStream<UIMessageChunk>({
      start: (controller) => {
        let emitted = 0;
        const end = (chunks: UIMessageChunk[]) => {
          if (done) return;
          cleanup();
          for (const chunk of chunks) controller.enqueue(chunk);
          controller.close();
        };
        const update = () => {
          if (done) return;
          const snapshot = generations.get(generationId);
          // Text only grows: deltas append, and a snapshot, a reload or the final text extend
          // what was shown (the store lines them up by seq).
          if (snapshot.text.length > emitted) {
            controller.enqueue({ type: 'text-delta', id: textId, delta: snapshot.text.slice(emitted) });
            emitted = snapshot.text.length;
          }
          if (snapshot.needsRefetch) void this.reload(generationId).catch(() => undefined);
          if (snapshot.status === 'completed') {
            end([
              { type: 'text-end', id: textId },
              { type: 'finish', finishReason: 'stop', messageMetadata: answerMetadata('completed') },
            ]);
          } else if (snapshot.status === 'cancelled') {
            end([
              { type: 'text-end', id: textId },
              { type: 'message-metadata', messageMetadata: answerMetadata('cancelled') },
              { type: 'abort', reason: 'cancelled' },
              { type: 'finish', finishReason: 'other' },
            ]);
          } else if (snapshot.status === 'failed') {
            const error = snapshot.error ?? 'the answer failed';
            end([
              { type: 'text-end', id: textId },
              { type: 'message-metadata', messageMetadata: answerMetadata('failed', error) },
              { type: 'error', errorText: error },
            ]);
          }
        };
        controller.enqueue({ type: 'start', messageId: generationId, messageMetadata: answerMetadata('running') });
        controller.enqueue({ type: 'text-start', id: textId });
        cleanups.push(generations.subscribe(generationId, update));
        // An answer whose events this page missed (the stream was away) is reloaded after a while.
        const pendingTimer = setInterval(() => {
          if (generations.get(generationId).status === 'pending') void this.reload(generationId).catch(() => undefined);
        }, this.options.reloadPendingAfterMs ?? 3_000);
        cleanups.push(() => clearInterval(pendingTimer));
        if (signal) {
          const onAbort = () => {
            end([]);
            // Decided after the current task: a superseding reconnect registers itself synchronously.
            setTimeout(() => {
              if (isStop()) void this.cancel(generationId).catch(() => undefined);
            }, 0);
          };
          if (signal.aborted) onAbort();
          else {
            signal.addEventListener('abort', onAbort, { once: true });
            cleanups.push(() => signal.removeEventListener('abort', onAbort));
          }
        }
        update();
      },
      cancel: cleanup,
    });
  }

  private reload(generationId: string): Promise<void> {
    return this.options.generations.reload(
      generationId,
      async () =>
        (await requestJson(
          this.options,
          'GET',
          `/api/ai/generations/${encodeURIComponent(generationId)}`,
        )) as LoadedGenerationView,
    );
  }
}

function headersOf(headers: ChatRequestOptions['headers']): Record<string, string> | undefined {
  if (!(headers instanceof Headers)) return headers;
  const record: Record<string, string> = {};
  headers.forEach((value, name) => {
    record[name] = value;
  });
  return record;
}

/** `useChat` messages as our request's: the text of each, without empty ones (the server refuses blank content). */
export function toGenerationMessages(messages: readonly UIMessage[]): GenerationMessage[] {
  const result: GenerationMessage[] = [];
  for (const message of messages) {
    const content = message.parts
      .map((part) => (part.type === 'text' ? part.text : ''))
      .join('')
      .trim();
    if (content !== '') result.push({ role: message.role, content });
  }
  return result;
}
