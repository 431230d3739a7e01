import { useState } from 'preact/hooks';
import { signIn } from '../auth';
import { describeError } from '../error-text';
import { store } from '../runtime';
import { useSelector } from '../store';

export function AuthScreen() {
  const notice = useSelector(store, (state) => state.notice);
  const [create, setCreate] = useState(false);
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn({ username: username.trim(), password, displayName: displayName.trim(), create });
    } catch (failure) {
      setError(describeError(failure));
      setBusy(false);
    }
  };

  return (
    <div class="auth">
      <form class="auth-card" onSubmit={submit}>
        <h1 class="brand">Parley</h1>
        <div class="segmented" role="tablist" aria-label="Account">
          <button type="button" role="tab" aria-selected={!create} onClick={() => setCreate(false)}>
            Log in
          </button>
          <button type="button" role="tab" aria-selected={create} onClick={() => setCreate(true)}>
            Create account
          </button>
        </div>
        {notice && <p class="notice">{notice}</p>}
        <label>
          Username
          <input
            name="username"
            autocomplete="username"
            required
            minLength={3}
            maxLength={32}
            pattern="[A-Za-z0-9_.\-]+"
            value={username}
            onInput={(event) => setUsername(event.currentTarget.value)}
          />
        </label>
        {create && (
          <label>
            Display name <span class="hint">(optional)</span>
            <input
              name="displayName"
              autocomplete="nickname"
              maxLength={64}
              value={displayName}
              onInput={(event) => setDisplayName(event.currentTarget.value)}
            />
          </label>
        )}
        <label>
          Password
          <input
            name="password"
            type="password"
            autocomplete={create ? 'new-password' : 'current-password'}
            required
            minLength={8}
            maxLength={256}
            value={password}
            onInput={(event) => setPassword(event.currentTarget.value)}
          />
        </label>
        {error && (
          <p class="form-error" role="alert">
            {error}
          </p>
        )}
        <button class="primary" type="submit" disabled={busy}>
          {busy ? 'Please wait…' : create ? 'Create account' : 'Log in'}
        </button>
      </form>
    </div>
  );
}
