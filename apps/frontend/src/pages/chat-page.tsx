/**
 * @module The chat page: the AI SDK's `useChat` on our generations through
 * `@infinitescribe/react/chat`. A turn runs on the server whatever happens to the page: a reload
 * mid-answer resumes it where it was, a server restart continues it, Stop cancels it on the
 * server, and every conversation is kept per user, so another tab or device lists and reopens it.
 * Loaded lazily (the AI SDK is in this chunk only).
 */
import { useChat } from '@ai-sdk/react';
import {
  answerMetadataOf,
  useConversationsApi,
  useGenerationChatTransport,
  withOpenedText,
  type ConversationSummary,
} from '@infinitescribe/react/chat';
import type { UIMessage } from 'ai';
import { useCallback, useEffect, useId, useMemo, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';

/** The conversation in the URL (`#/chat/<id>`), or none. */
function chatIdFromHash(): string | null {
  const match = /^#\/chat\/([0-9A-Za-z._:-]{1,128})$/.exec(window.location.hash);
  return match ? match[1]! : null;
}

function newChatId(): string {
  // getRandomValues, not randomUUID: the latter exists only on https (or localhost) pages.
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `chat-${Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')}`;
}

/** The chat page: the user's conversations beside the open one. */
export function ChatPage() {
  const [chatId, setChatId] = useState<string>(() => chatIdFromHash() ?? newChatId());
  const api = useConversationsApi();
  const [conversations, setConversations] = useState<ConversationSummary[] | null>(null);
  const [listError, setListError] = useState<string | null>(null);

  useEffect(() => {
    // The id stays in the URL, so a reload reopens this conversation.
    if (chatIdFromHash() !== chatId) window.history.replaceState(null, '', `#/chat/${chatId}`);
    const onHashChange = () => {
      const fromHash = chatIdFromHash();
      if (fromHash) setChatId(fromHash);
    };
    window.addEventListener('hashchange', onHashChange);
    return () => window.removeEventListener('hashchange', onHashChange);
  }, [chatId]);

  const refresh = useCallback(async () => {
    try {
      setConversations((await api.list({ limit: 50 })).conversations);
      setListError(null);
    } catch (error) {
      setListError(error instanceof Error ? error.message : String(error));
    }
  }, [api]);

  useEffect(() => {
    void refresh();
    // Another tab or device may have started a conversation: look again when this tab is back.
    const onVisible = () => document.visibilityState === 'visible' && void refresh();
    document.addEventListener('visibilitychange', onVisible);
    window.addEventListener('focus', refresh);
    return () => {
      document.removeEventListener('visibilitychange', onVisible);
      window.removeEventListener('focus', refresh);
    };
  }, [refresh]);

  return (
    <div className="chat-layout">
      <nav className="card chat-list" aria-labelledby="chat-list-title">
        <div className="chat-list-head">
          <h2 id="chat-list-title">Conversations</h2>
          <button type="button" className="button" onClick={() => setChatId(newChatId())} data-testid="new-chat">
            New chat
          </button>
        </div>
        {listError && (
          <p className="form-error" role="alert">
            Could not load your conversations: {listError}
          </p>
        )}
        {conversations === null ? (
          <p className="muted">Loading…</p>
        ) : conversations.length === 0 ? (
          <p className="muted">No conversations yet.</p>
        ) : (
          <ul className="chat-list-items" data-testid="conversation-list">
            {conversations.map((conversation) => (
              <li key={conversation.conversationId}>
                <a
                  href={`#/chat/${conversation.conversationId}`}
                  className="chat-list-link"
                  aria-current={conversation.conversationId === chatId ? 'page' : undefined}
                  data-testid="conversation-link"
                  data-conversation-id={conversation.conversationId}
                >
                  <span className="chat-list-title">{conversation.title || 'Untitled'}</span>
                  <span className="muted chat-list-meta">
                    {conversation.turnCount} {conversation.turnCount === 1 ? 'turn' : 'turns'}
                    {conversation.runningGenerationId ? ' · answering…' : ''}
                  </span>
                </a>
              </li>
            ))}
          </ul>
        )}
      </nav>
      <LoadedConversation key={chatId} chatId={chatId} onTurnSettled={refresh} />
    </div>
  );
}

/** Loads the stored turns of `chatId` (none for a new chat), then shows the chat. */
function LoadedConversation({ chatId, onTurnSettled }: { chatId: string; onTurnSettled: () => void }) {
  const api = useConversationsApi();
  const transport = useGenerationChatTransport();
  const [initial, setInitial] = useState<UIMessage[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const abort = new AbortController();
    api.get(chatId, { signal: abort.signal }).then(
      (view) => setInitial(view ? transport.messagesOf(view) : []),
      (loadError: unknown) => {
        if (!abort.signal.aborted) setError(loadError instanceof Error ? loadError.message : String(loadError));
      },
    );
    return () => abort.abort();
  }, [api, chatId, transport]);
  if (error) {
    return (
      <section className="card chat-main">
        <p className="form-error" role="alert">
          Could not open this conversation: {error}
        </p>
      </section>
    );
  }
  if (!initial) {
    return (
      <section className="card chat-main" aria-busy="true">
        <p className="muted">Opening the conversation…</p>
      </section>
    );
  }
  return <ChatView chatId={chatId} initialMessages={initial} onTurnSettled={onTurnSettled} />;
}

const STATUS_TEXT = {
  submitted: 'Sending…',
  streaming: 'Answering…',
  ready: 'Ready',
  error: 'Something went wrong',
} as const;

function ChatView(props: { chatId: string; initialMessages: UIMessage[]; onTurnSettled: () => void }) {
  const { chatId, initialMessages, onTurnSettled } = props;
  const transport = useGenerationChatTransport();
  const { messages, setMessages, sendMessage, status, stop, error } = useChat({
    id: chatId,
    messages: initialMessages,
    transport,
    // A reload mid-answer picks the answer up where it stood.
    resume: true,
    onFinish: ({ message, isAbort }) => {
      // Stop ends the stream here before the server's `cancelled` arrives: mark the answer now.
      if (isAbort && message.role === 'assistant') {
        setMessages((current) =>
          current.map((shown) =>
            shown.id === message.id
              ? { ...shown, metadata: { ...answerMetadataOf(shown), status: 'cancelled' } }
              : shown,
          ),
        );
      }
      onTurnSettled();
    },
    onError: () => onTurnSettled(),
  });
  // A resumed answer keeps showing the text it was opened with until the live one catches up.
  const shown = useMemo(() => withOpenedText(messages, initialMessages), [messages, initialMessages]);
  const [input, setInput] = useState('');
  const inputId = useId();
  const busy = status === 'submitted' || status === 'streaming';
  const logRef = useRef<HTMLOListElement>(null);

  useEffect(() => {
    const log = logRef.current;
    if (log) log.scrollTop = log.scrollHeight;
  }, [messages]);

  const send = (event?: FormEvent) => {
    event?.preventDefault();
    const text = input.trim();
    if (text === '' || busy) return;
    setInput('');
    void sendMessage({ text }).then(onTurnSettled);
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    // Enter sends, Shift+Enter starts a new line; Escape stops the answer.
    if (event.key === 'Enter' && !event.shiftKey) send(event);
    if (event.key === 'Escape' && busy) void stop();
  };

  return (
    <section className="card chat-main" aria-labelledby="chat-title">
      <h2 id="chat-title" className="sr-only">
        Chat
      </h2>
      <ol className="chat-log" ref={logRef} role="log" aria-live="polite" aria-label="Messages" data-testid="chat-log">
        {shown.length === 0 && <li className="muted chat-empty">Ask anything to start.</li>}
        {shown.map((message) => (
          <li
            key={message.id}
            className={`chat-message chat-${message.role}`}
            data-testid={`chat-message-${message.role}`}
            data-message-id={message.id}
            // A screen reader reads an answer once it is complete, not every word as it streams.
            aria-busy={busy && message === shown.at(-1) && message.role === 'assistant' ? true : undefined}
          >
            <span className="chat-author">{message.role === 'user' ? 'You' : 'Assistant'}</span>
            <p className="chat-text">
              {message.parts.map((part) => (part.type === 'text' ? part.text : '')).join('')}
              {busy && message === shown.at(-1) && message.role === 'assistant' && (
                <span className="caret" aria-hidden="true" />
              )}
            </p>
            <AnswerNote message={message} />
          </li>
        ))}
      </ol>
      <p className="status-line" data-testid="chat-status" data-status={status} role="status">
        {STATUS_TEXT[status]}
        {error && status === 'error' ? `: ${error.message}` : ''}
      </p>
      <form className="chat-form" onSubmit={send}>
        <label htmlFor={inputId} className="sr-only">
          Message
        </label>
        <textarea
          id={inputId}
          className="chat-input"
          rows={2}
          value={input}
          placeholder="Write a message (Enter to send, Shift+Enter for a new line)"
          onChange={(event) => setInput(event.target.value)}
          onKeyDown={onKeyDown}
          data-testid="chat-input"
        />
        {busy ? (
          <button type="button" className="button" onClick={() => void stop()} data-testid="chat-stop">
            Stop
          </button>
        ) : (
          <button type="submit" className="button primary" disabled={input.trim() === ''} data-testid="chat-send">
            Send
          </button>
        )}
      </form>
    </section>
  );
}

/** Under an answer that did not complete: stopped, or failed and why. */
function AnswerNote({ message }: { message: UIMessage }) {
  const metadata = message.role === 'assistant' ? answerMetadataOf(message) : undefined;
  if (metadata?.status === 'cancelled') {
    return (
      <p className="chat-note muted" data-testid="answer-stopped">
        Stopped
      </p>
    );
  }
  if (metadata?.status === 'failed') {
    return (
      <p className="chat-note form-error" data-testid="answer-failed">
        The answer failed{metadata.error ? `: ${metadata.error}` : ''}
      </p>
    );
  }
  return null;
}
