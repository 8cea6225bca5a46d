import { useId, useState, type FormEvent } from 'react';
import { describeError } from '../lib/api-client.js';
import { signIn, USER_ID_PATTERN, type DevSession } from '../lib/dev-auth.js';

/** "Sign in as <name>": a development sign-in through `POST /api/auth/dev-token`. */
export function SignInForm({ onSignedIn }: { onSignedIn: (session: DevSession) => void }) {
  const [name, setName] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [isBusy, setBusy] = useState(false);
  const inputId = useId();
  const hintId = useId();
  const errorId = useId();

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const userId = name.trim();
    if (!USER_ID_PATTERN.test(userId)) {
      setError('Use letters, digits and _ . @ - only (up to 100 characters).');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await signIn(userId));
    } catch (caught) {
      setError(describeError(caught));
      setBusy(false);
    }
  };

  return (
    <form className="card sign-in" onSubmit={(event) => void submit(event)} data-testid="sign-in-form">
      <h1>InfiniteScribe</h1>
      <p>An AI writing assistant with live streaming. Sign in with any name to try it.</p>
      <label htmlFor={inputId}>Your name</label>
      <input
        id={inputId}
        name="userId"
        autoComplete="username"
        value={name}
        onChange={(event) => setName(event.target.value)}
        aria-describedby={error ? `${hintId} ${errorId}` : hintId}
        aria-invalid={error !== null}
        placeholder="e.g. elizabeth"
        data-testid="sign-in-name"
        required
      />
      <p id={hintId} className="hint">
        Development sign-in: no password; each name is its own user.
      </p>
      {error && (
        <p id={errorId} className="form-error" role="alert">
          {error}
        </p>
      )}
      <button type="submit" className="button primary" disabled={isBusy} data-testid="sign-in-submit">
        {isBusy ? 'Signing in…' : `Sign in${name.trim() ? ` as ${name.trim()}` : ''}`}
      </button>
    </form>
  );
}
