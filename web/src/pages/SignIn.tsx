import { useState } from 'preact/hooks';
import { t } from '../i18n';
import { signIn } from '../lib/api';

export function SignIn(props: { expired: boolean; onDone: () => void }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <section class="signin card">
      <h1>{t('signin.title')}</h1>
      {props.expired && <p class="error" role="alert">{t('signin.expired')}</p>}
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          try {
            await signIn(value.trim());
            props.onDone();
          } catch (err) {
            setError(t('signin.bad', { msg: err instanceof Error ? err.message : String(err) }));
          } finally {
            setBusy(false);
          }
        }}
      >
        <div class="field">
          <label for="token">{t('signin.token')}</label>
          <input id="token" name="token" type="password" autoComplete="off" required value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
        </div>
        <p class="hint">{t('signin.help')}</p>
        <p class="hint">{t('signin.session')}</p>
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit" disabled={busy}>
          {t('signin.submit')}
        </button>
      </form>
    </section>
  );
}
