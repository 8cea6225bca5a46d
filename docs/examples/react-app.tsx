import { SSEProvider, useEventSubscription, useGeneration, useSSEConnection } from '@infinitescribe/react';
import { useState } from 'react';

interface AppProps {
  userId: string;
  /** `''` when the API is served from the page's own origin. */
  apiUrl: string;
  getToken: () => Promise<string>;
}

/** The app's root: one provider per signed-in user (the key closes the previous user's stream). */
export function App({ userId, apiUrl, getToken }: AppProps) {
  return (
    <SSEProvider key={userId} options={{ url: apiUrl, getToken }}>
      <ConnectionBadge />
      <Notifications />
      <Draft apiUrl={apiUrl} getToken={getToken} />
    </SSEProvider>
  );
}

function ConnectionBadge() {
  const { state, isConnected, retryInSeconds } = useSSEConnection();
  if (isConnected) return <span role="status">live</span>;
  return <span role="status">{state === 'reconnecting' ? `retrying in ${retryInSeconds ?? 0} s` : state}</span>;
}

function Notifications() {
  const [titles, setTitles] = useState<string[]>([]);
  useEventSubscription('notification', (event) => setTitles((shown) => [...shown, event.payload.title]));
  return (
    <ul aria-label="notifications">
      {titles.map((title, index) => (
        <li key={index}>{title}</li>
      ))}
    </ul>
  );
}

function Draft({ apiUrl, getToken }: Omit<AppProps, 'userId'>) {
  const [generationId, setGenerationId] = useState<string>();
  const { text, status, isStreaming, error } = useGeneration(generationId);
  async function write() {
    const response = await fetch(`${apiUrl}/api/ai/generations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await getToken()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Write an opening line about the sea.', maxTokens: 30 }),
    });
    setGenerationId(((await response.json()) as { generationId: string }).generationId);
  }
  return (
    <section aria-label="draft" data-status={status}>
      <button onClick={() => void write()} disabled={isStreaming}>
        Write
      </button>
      <p>{text}</p>
      {error && <p role="alert">{error}</p>}
    </section>
  );
}
