// The console's frame: sign-in gate, navigation, language switch and the page for the URL.
import { useEffect, useState } from 'preact/hooks';
import { LANGS, lang, localeTag, setLang, t, type Lang } from './i18n';
import { onUnauthorized, signedIn, signOut } from './lib/api';
import { match, navigate, useLocation } from './lib/router';
import { Link } from './components';
import { SignIn } from './pages/SignIn';
import { Overview } from './pages/Overview';
import { Jobs } from './pages/Jobs';
import { JobEdit } from './pages/JobEdit';
import { JobDetail } from './pages/JobDetail';
import { Alerts } from './pages/Alerts';
import { Executors } from './pages/Executors';

export function App() {
  const loc = useLocation();
  const [, setLangState] = useState<Lang>(lang());
  const [authed, setAuthed] = useState(signedIn());
  const [expired, setExpired] = useState(false);

  useEffect(() => {
    document.documentElement.lang = localeTag();
    onUnauthorized(() => {
      signOut();
      setExpired(true);
      setAuthed(false);
    });
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

  if (!authed) {
    return (
      <div class="signin-frame">
        <header class="top">
          <span class="brand">{t('app.name')}</span>
          {langSelect}
        </header>
        <main id="main">
          <SignIn
            expired={expired}
            onDone={() => {
              setExpired(false);
              setAuthed(true);
            }}
          />
        </main>
      </div>
    );
  }

  const nav = [
    { href: '/', label: t('nav.overview'), on: loc.path === '/' },
    { href: '/jobs', label: t('nav.jobs'), on: loc.path.startsWith('/jobs') },
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
          <button
            type="button"
            class="secondary"
            onClick={() => {
              signOut();
              setAuthed(false);
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
