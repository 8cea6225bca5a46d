import { useEffect, useState } from 'react';

interface Readiness {
  status: string;
  bus: { kind: string; status: string };
  store: { kind: string; status: string };
}

/** Until the writing assistant lands: a page that tells whether the real-time server is up. */
export function App() {
  const [readiness, setReadiness] = useState<Readiness | 'unreachable' | undefined>();

  useEffect(() => {
    let active = true;
    const check = () =>
      fetch('/readyz')
        .then((response) => response.json() as Promise<Readiness>)
        .then((body) => active && setReadiness(body))
        .catch(() => active && setReadiness('unreachable'));
    void check();
    const timer = setInterval(check, 5_000);
    return () => {
      active = false;
      clearInterval(timer);
    };
  }, []);

  return (
    <main style={{ fontFamily: 'system-ui, sans-serif', maxWidth: 640, margin: '3rem auto', padding: '0 1rem' }}>
      <h1>InfiniteScribe Realtime</h1>
      <p role="status" aria-live="polite" data-testid="server-status">
        {readiness === undefined && 'Checking the server…'}
        {readiness === 'unreachable' && 'The server is unreachable.'}
        {typeof readiness === 'object' &&
          `The server is up (${readiness.status}): bus ${readiness.bus.kind} ${readiness.bus.status}, store ${readiness.store.kind} ${readiness.store.status}.`}
      </p>
    </main>
  );
}
