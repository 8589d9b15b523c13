// The sign-in page: a user name and password (a session cookie) first, an API token as the
// second way, and the password change a user must make before anything else
// (docs/console.md#signing-in).  How requests are then authenticated is api.ts's business.
import { useState } from 'preact/hooks';
import { t } from '../i18n';
import { ApiError, changePassword, signIn, signInPassword, signOut, type Session } from '../lib/api';
import { newPasswordProblem, waitMinutes } from '../lib/password';

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A refused sign-in, in the viewer's language, with the server's own words under it. */
function SignInError(props: { err: unknown }) {
  const { err } = props;
  let line: string;
  if (err instanceof ApiError && err.status === 401) line = t('signin.wrong');
  else if (err instanceof ApiError && err.status === 429) {
    const min = waitMinutes(err.retryAfter);
    line = min === null ? t('signin.lockedNoTime') : t('signin.locked', { min });
  } else line = t('signin.failed', { msg: message(err) });
  return (
    <div class="error" role="alert" id="signin-error">
      <p>{line}</p>
      {err instanceof ApiError && (err.status === 401 || err.status === 429) && <p class="hint">{t('signin.server', { msg: err.message })}</p>}
    </div>
  );
}

export function SignIn(props: { expired: boolean; mustChange: Session | null; onDone: (s: Session) => void; onSignOut: () => void }) {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [tokenValue, setTokenValue] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [tokenError, setTokenError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [change, setChange] = useState<Session | null>(props.mustChange);

  if (change) return <ChangePassword session={change} onDone={props.onDone} onSignOut={props.onSignOut} />;

  const input = (set: (v: string) => void) => (e: Event) => set((e.target as HTMLInputElement).value);
  return (
    <section class="signin card">
      <h1>{t('signin.title')}</h1>
      {props.expired && (
        <p class="error" role="alert">
          {t('signin.expired')}
        </p>
      )}
      <form
        id="signin-password"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          try {
            const s = await signInPassword(user.trim(), password);
            setPassword('');
            if (s.must_change_password) setChange(s);
            else props.onDone(s);
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        <div class="field">
          <label for="signin-user">{t('signin.user')}</label>
          <input id="signin-user" name="username" autoComplete="username" required value={user} onInput={input(setUser)} />
        </div>
        <div class="field">
          <label for="signin-pass">{t('signin.password')}</label>
          <input id="signin-pass" name="password" type="password" autoComplete="current-password" required value={password} onInput={input(setPassword)} />
        </div>
        <p class="hint">{t('signin.passwordHelp')}</p>
        <p class="hint">{t('signin.cookie')}</p>
        {error !== null && <SignInError err={error} />}
        <button type="submit" disabled={busy}>
          {t('signin.submit')}
        </button>
      </form>
      <details class="signin-token">
        <summary>{t('signin.useToken')}</summary>
        <form
          id="signin-token"
          onSubmit={async (e) => {
            e.preventDefault();
            setBusy(true);
            setTokenError(null);
            try {
              props.onDone(await signIn(tokenValue.trim()));
            } catch (err) {
              setTokenError(t('signin.bad', { msg: message(err) }));
            } finally {
              setBusy(false);
            }
          }}
        >
          <div class="field">
            <label for="token">{t('signin.token')}</label>
            <input id="token" name="token" type="password" autoComplete="off" required value={tokenValue} onInput={input(setTokenValue)} />
          </div>
          <p class="hint">{t('signin.help')}</p>
          <p class="hint">{t('signin.session')}</p>
          {tokenError && (
            <p class="error" role="alert">
              {tokenError}
            </p>
          )}
          <button type="submit" disabled={busy}>
            {t('signin.tokenSubmit')}
          </button>
        </form>
      </details>
    </section>
  );
}

/** The password change a user must make first (or chooses to make): old, new, repeat. */
function ChangePassword(props: { session: Session; onDone: (s: Session) => void; onSignOut: () => void }) {
  const [old, setOld] = useState('');
  const [next, setNext] = useState('');
  const [repeat, setRepeat] = useState('');
  const [error, setError] = useState<{ msg: string; field: string | null } | null>(null);
  const [busy, setBusy] = useState(false);
  const input = (set: (v: string) => void) => (e: Event) => set((e.target as HTMLInputElement).value);
  const bad = (f: string) => (error?.field === f ? true : undefined);
  return (
    <section class="signin card">
      <h1>{t('password.title')}</h1>
      {props.session.must_change_password && <p>{t('password.must', { name: props.session.name })}</p>}
      <form
        id="change-password"
        onSubmit={async (e) => {
          e.preventDefault();
          setError(null);
          const problem = newPasswordProblem(props.session.name, old, next, repeat);
          if (problem) {
            const key = problem === 'repeat' ? 'password.repeatBad' : (`password.${problem}` as const);
            setError({ msg: t(key), field: problem === 'repeat' ? 'repeat' : 'new' });
            return;
          }
          setBusy(true);
          try {
            const s = await changePassword(old, next);
            props.onDone(s);
          } catch (err) {
            setError({ msg: t('password.refused', { msg: message(err) }), field: err instanceof ApiError ? err.field : null });
          } finally {
            setBusy(false);
          }
        }}
      >
        <input type="text" name="username" autoComplete="username" value={props.session.name} readOnly hidden />
        <div class="field">
          <label for="pw-old">{t('password.old')}</label>
          <input id="pw-old" type="password" autoComplete="current-password" required value={old} onInput={input(setOld)} aria-invalid={bad('old')} />
        </div>
        <div class="field">
          <label for="pw-new">{t('password.new')}</label>
          <input id="pw-new" type="password" autoComplete="new-password" required value={next} onInput={input(setNext)} aria-invalid={bad('new')} />
        </div>
        <div class="field">
          <label for="pw-repeat">{t('password.repeat')}</label>
          <input id="pw-repeat" type="password" autoComplete="new-password" required value={repeat} onInput={input(setRepeat)} aria-invalid={bad('repeat')} />
        </div>
        <p class="hint">{t('password.rules')}</p>
        {error && (
          <p class="error" role="alert" id="password-error">
            {error.msg}
          </p>
        )}
        <div class="actions">
          <button type="submit" disabled={busy}>
            {t('password.submit')}
          </button>
          <button
            type="button"
            class="secondary"
            onClick={async () => {
              await signOut();
              props.onSignOut();
            }}
          >
            {t('nav.signout')}
          </button>
        </div>
      </form>
    </section>
  );
}
