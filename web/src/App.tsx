// The console's frame: sign-in gate, navigation, language switch and the page for the URL.
import { useEffect, useState } from 'preact/hooks';
import { LANGS, lang, localeTag, setLang, t, type Lang } from './i18n';
import { forget, loadSession, onUnauthorized, signOut, type Session } from './lib/api';
import { match, navigate, useLocation } from './lib/router';
import { Link } from './components';
import { SignIn } from './pages/SignIn';
import { Overview } from './pages/Overview';
import { Jobs } from './pages/Jobs';
import { JobEdit } from './pages/JobEdit';
import { JobDetail } from './pages/JobDetail';
import { Alerts } from './pages/Alerts';
import { Executors } from './pages/Executors';
import { Domains } from './pages/Domains';

export function App() {
  const loc = useLocation();
  const [, setLangState] = useState<Lang>(lang());
  // undefined: asking the server (GET /api/v1/session); null: signed out
  const [who, setWho] = useState<Session | null | undefined>(undefined);
  const [expired, setExpired] = useState(false);
  const authed = who !== undefined && who !== null && !who.must_change_password;

  useEffect(() => {
    document.documentElement.lang = localeTag();
    onUnauthorized(() => {
      forget();
      setExpired(true);
      setWho(null);
    });
    loadSession().then(
      (s) => setWho(s),
      () => setWho(null),
    );
  }, []);

  useEffect(() => {
    const page = pageTitle(loc.path);
    document.title = `${page} · ${t('app.name')}`;
  });

  const switchLang = (l: Lang) => {
    setLang(l);
    setLangState(l);
  };

  const langSelect = (
    <label class="lang">
      <span class="visually-hidden">{t('nav.language')}</span>
      <select id="lang" value={lang()} onChange={(e) => switchLang((e.target as HTMLSelectElement).value as Lang)} aria-label={t('nav.language')}>
        {LANGS.map((l) => (
          <option value={l.id} key={l.id}>
            {l.label}
          </option>
        ))}
      </select>
    </label>
  );

  if (who === undefined) {
    return (
      <div class="signin-frame">
        <header class="top">
          <span class="brand">{t('app.name')}</span>
          {langSelect}
        </header>
        <main id="main">
          <p aria-live="polite">{t('common.loading')}</p>
        </main>
      </div>
    );
  }

  if (!authed) {
    return (
      <div class="signin-frame">
        <header class="top">
          <span class="brand">{t('app.name')}</span>
          {langSelect}
        </header>
        <main id="main">
          <SignIn
            key={who === null ? 'out' : who.name}
            expired={expired}
            mustChange={who !== null && who.must_change_password ? who : null}
            onDone={(s) => {
              setExpired(false);
              setWho(s);
            }}
            onSignOut={() => {
              setExpired(false);
              setWho(null);
            }}
          />
        </main>
      </div>
    );
  }

  const nav = [
    { href: '/', label: t('nav.overview'), on: loc.path === '/' },
    { href: '/jobs', label: t('nav.jobs'), on: loc.path.startsWith('/jobs') },
    { href: '/domains', label: t('nav.domains'), on: loc.path.startsWith('/domains') },
    { href: '/alerts', label: t('nav.alerts'), on: loc.path.startsWith('/alerts') },
    { href: '/executors', label: t('nav.executors'), on: loc.path.startsWith('/executors') },
  ];

  return (
    <>
      <a class="skip" href="#main">
        {t('app.skip')}
      </a>
      <header class="top">
        <Link href="/" class="brand">
          {t('app.name')}
        </Link>
        <nav aria-label={t('nav.main')}>
          <ul>
            {nav.map((n) => (
              <li key={n.href}>
                <Link href={n.href} aria-current={n.on ? 'page' : undefined}>
                  {n.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div class="tools">
          {langSelect}
          <span class="who" title={t('nav.signedInAs', { name: who.name })}>
            <span class="visually-hidden">{t('nav.user')}: </span>
            <span id="signed-in-user">{who.name}</span>
          </span>
          <button
            type="button"
            class="secondary"
            id="sign-out"
            onClick={async () => {
              await signOut();
              setExpired(false);
              setWho(null);
              navigate('/');
            }}
          >
            {t('nav.signout')}
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Page path={loc.path} query={loc.query} />
      </main>
    </>
  );
}

function pageTitle(path: string): string {
  if (path.startsWith('/jobs')) return t('nav.jobs');
  if (path.startsWith('/domains')) return t('nav.domains');
  if (path.startsWith('/alerts')) return t('nav.alerts');
  if (path.startsWith('/executors')) return t('nav.executors');
  return t('nav.overview');
}

function Page(props: { path: string; query: URLSearchParams }) {
  const { path, query } = props;
  let m: Record<string, string> | null;
  if (path === '/' || path === '') return <Overview />;
  if (path === '/jobs') return <Jobs query={query} />;
  if (path === '/jobs/new') return <JobEdit key="new" />;
  if ((m = match('/jobs/:name/edit', path))) return <JobEdit key={m.name} name={m.name} />;
  if ((m = match('/jobs/:name', path))) return <JobDetail key={m.name} name={m.name} />;
  if (path === '/domains') return <Domains />;
  if (path === '/alerts') return <Alerts />;
  if (path === '/executors') return <Executors />;
  return (
    <section>
      <h1>{t('notfound.title')}</h1>
      <p>
        <Link href="/">{t('nav.overview')}</Link>
      </p>
    </section>
  );
}
