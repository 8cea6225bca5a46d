import { SSEProvider } from '@infinitescribe/react';
import { lazy, Suspense, useEffect, useMemo, useState } from 'react';
import { ConnectionBadge } from './components/connection-badge.js';
import { ErrorBoundary } from './components/error-boundary.js';
import { SignInForm } from './components/sign-in-form.js';
import { NotificationToasts, ToastProvider } from './components/toasts.js';
import { createApiClient } from './lib/api-client.js';
import { restoreSession, signOut, type DevSession } from './lib/dev-auth.js';
import { EditorPage } from './pages/editor-page.js';

// The charts (uPlot) load only when the operations page is opened, the AI SDK only with the chat.
const OperationsPage = lazy(async () => ({ default: (await import('./pages/operations-page.js')).OperationsPage }));
const ChatPage = lazy(async () => ({ default: (await import('./pages/chat-page.js')).ChatPage }));

type Page = 'editor' | 'chat' | 'operations';

const PAGES: { id: Page; label: string }[] = [
  { id: 'editor', label: 'Editor' },
  { id: 'chat', label: 'Chat' },
  { id: 'operations', label: 'Operations' },
];

/** The writing assistant: sign-in, then the editor and operations pages under one SSE client. */
export function App() {
  const [session, setSession] = useState<DevSession | null>(() => restoreSession());
  return (
    <ErrorBoundary area="the app">
      <ToastProvider>
        {session ? (
          <SignedIn
            session={session}
            onSignOut={() => {
              signOut();
              setSession(null);
            }}
          />
        ) : (
          <main className="sign-in-page">
            <SignInForm onSignedIn={setSession} />
          </main>
        )}
      </ToastProvider>
    </ErrorBoundary>
  );
}

function SignedIn({ session, onSignOut }: { session: DevSession; onSignOut: () => void }) {
  const [page, setPage] = usePageFromHash();
  const api = useMemo(() => createApiClient(session.getToken), [session]);
  const options = useMemo(
    () => ({
      url: '',
      getToken: session.getToken,
      // One tab may sign in as someone else: keep each user's resume point apart.
      storageKey: `infinitescribe:sse:last-event-id:${session.userId}`,
    }),
    [session],
  );
  return (
    // A new user gets a new client (and stores): no events cross accounts.
    <SSEProvider key={session.userId} options={options}>
      <NotificationToasts />
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="app-header">
        <div className="brand">
          <span className="brand-mark" aria-hidden="true">
            ✎
          </span>
          InfiniteScribe
        </div>
        <nav aria-label="Pages" className="tabs">
          {PAGES.map(({ id, label }) => (
            <a
              key={id}
              href={`#/${id}`}
              className="tab"
              aria-current={page === id ? 'page' : undefined}
              onClick={() => setPage(id)}
              data-testid={`tab-${id}`}
            >
              {label}
            </a>
          ))}
        </nav>
        <ConnectionBadge />
        <div className="user">
          <span className="muted">
            Signed in as <strong data-testid="user-name">{session.userId}</strong>
          </span>
          <button type="button" className="link-button" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" className="app-main" tabIndex={-1}>
        {page === 'editor' ? (
          <ErrorBoundary key="editor" area="the editor">
            <EditorPage api={api} userId={session.userId} />
          </ErrorBoundary>
        ) : page === 'chat' ? (
          <ErrorBoundary key="chat" area="the chat">
            <Suspense fallback={<p className="muted">Loading the chat…</p>}>
              <ChatPage />
            </Suspense>
          </ErrorBoundary>
        ) : (
          <ErrorBoundary key="operations" area="the operations page">
            <Suspense fallback={<p className="muted">Loading the charts…</p>}>
              <OperationsPage />
            </Suspense>
          </ErrorBoundary>
        )}
      </main>
    </SSEProvider>
  );
}

function pageFromHash(): Page {
  const hash = window.location.hash;
  if (hash === '#/operations') return 'operations';
  // `#/chat/<conversation id>` opens one conversation (the chat page reads the id).
  if (hash === '#/chat' || hash.startsWith('#/chat/')) return 'chat';
  return 'editor';
}

/** The page named in the URL hash (`#/editor`, `#/chat`, `#/operations`), so reloads and links keep it. */
function usePageFromHash(): [Page, (page: Page) => void] {
  const [page, setPage] = useState<Page>(pageFromHash);
  useEffect(() => {
    const onHashChange = () => setPage(pageFromHash());
    window.addEventListener('hashchange', onHashChange);
    return () => window.removeEventListener('hashchange', onHashChange);
  }, []);
  return [page, setPage];
}
