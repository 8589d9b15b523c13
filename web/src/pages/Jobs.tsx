// Jobs: one page of the list at a time, from the server (GET /api/v1/jobs with q, domain,
// type, state, level, limit and cursor); the filters live in the URL so a filtered list
// can be reloaded and shared.
import { useState } from 'preact/hooks';
import { t } from '../i18n';
import { qs, request, type Job, type Page } from '../lib/api';
import { formatRfc3339 } from '../lib/format';
import { navigate } from '../lib/router';
import { ErrorBox, jobHref, Link, useLoad } from '../components';

const PAGE = 50;

export function Jobs(props: { query: URLSearchParams }) {
  const q = props.query;
  const filters = {
    q: q.get('q') ?? '',
    domain: q.get('domain') ?? '',
    type: q.get('type') ?? '',
    state: q.get('state') ?? '',
    level: q.get('level') ?? '',
  };
  const key = JSON.stringify(filters);
  const [cursors, setCursors] = useState<{ key: string; stack: (string | null)[] }>({ key, stack: [null] });
  const stack = cursors.key === key ? cursors.stack : [null];
  const cursor = stack[stack.length - 1];
  const { data, error, loading } = useLoad(
    () => request<Page<Job>>('GET', `/jobs${qs({ ...filters, limit: PAGE, cursor })}`),
    [key, cursor],
  );
  const [draft, setDraft] = useState(filters);
  const [draftKey, setDraftKey] = useState(key);
  if (draftKey !== key) {
    setDraft(filters);
    setDraftKey(key);
  }
  const set = (k: keyof typeof filters) => (e: Event) => setDraft({ ...draft, [k]: (e.target as HTMLInputElement).value });

  return (
    <section>
      <div class="page-head">
        <h1>{t('jobs.title')}</h1>
        <Link href="/jobs/new" class="button">
          {t('jobs.new')}
        </Link>
      </div>
      <form
        class="filters card"
        role="search"
        aria-label={t('jobs.filters')}
        onSubmit={(e) => {
          e.preventDefault();
          navigate(`/jobs${qs(draft)}`);
        }}
      >
        <div class="field grow">
          <label for="f-q">{t('jobs.search')}</label>
          <input id="f-q" type="search" value={draft.q} onInput={set('q')} />
        </div>
        <div class="field">
          <label for="f-domain">{t('jobs.domain')}</label>
          <input id="f-domain" value={draft.domain} onInput={set('domain')} />
        </div>
        <div class="field">
          <label for="f-type">{t('jobs.type')}</label>
          <select id="f-type" value={draft.type} onChange={set('type')}>
            <option value="">{t('common.all')}</option>
            <option value="shell">shell</option>
          </select>
        </div>
        <div class="field">
          <label for="f-state">{t('jobs.state')}</label>
          <select id="f-state" value={draft.state} onChange={set('state')}>
            <option value="">{t('common.all')}</option>
            <option value="enabled">{t('jobs.enabled')}</option>
            <option value="disabled">{t('jobs.disabled')}</option>
          </select>
        </div>
        <div class="field">
          <label for="f-level">{t('jobs.level')}</label>
          <select id="f-level" value={draft.level} onChange={set('level')}>
            <option value="">{t('common.all')}</option>
            {[0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((l) => (
              <option key={l} value={String(l)}>
                {l}
              </option>
            ))}
          </select>
        </div>
        <button type="submit">{t('jobs.filter')}</button>
      </form>
      <ErrorBox error={error} />
      {loading && !data && <p>{t('common.loading')}</p>}
      {data && (
        <>
          {data.items.length === 0 ? (
            <p class="hint">{t('common.empty')}</p>
          ) : (
            <div class="table-wrap">
              <table id="jobs-table">
                <thead>
                  <tr>
                    <th scope="col">{t('jobs.name')}</th>
                    <th scope="col">{t('jobs.domain')}</th>
                    <th scope="col" class="num">{t('jobs.level')}</th>
                    <th scope="col">{t('jobs.schedule')}</th>
                    <th scope="col">{t('jobs.nextFire')}</th>
                    <th scope="col">{t('jobs.state')}</th>
                    <th scope="col" class="num">{t('jobs.running')}</th>
                  </tr>
                </thead>
                <tbody>
                  {data.items.map((j) => (
                    <tr key={j.name}>
                      <th scope="row">
                        <Link href={jobHref(j.name)}>{j.name}</Link>
                        {j.description && <div class="sub">{j.description}</div>}
                      </th>
                      <td>{j.domain || '—'}</td>
                      <td class="num">{j.level}</td>
                      <td>
                        <code>{j.schedule ?? '—'}</code>
                        <div class="sub">{j.time_zone}</div>
                      </td>
                      <td>{formatRfc3339(j.state?.next_fire, j.time_zone)}</td>
                      <td>
                        <span class={j.enabled ? 'badge ok' : 'badge off'}>{j.enabled ? t('jobs.enabled') : t('jobs.disabled')}</span>
                      </td>
                      <td class="num">{j.state?.running ?? 0}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <nav class="pager" aria-label={t('jobs.page', { n: stack.length })}>
            <button type="button" class="secondary" disabled={stack.length <= 1} onClick={() => setCursors({ key, stack: stack.slice(0, -1) })}>
              {t('common.prev')}
            </button>
            <span>{t('jobs.page', { n: stack.length })}</span>
            <button type="button" class="secondary" disabled={!data.next} onClick={() => setCursors({ key, stack: [...stack, data.next] })}>
              {t('common.next')}
            </button>
          </nav>
        </>
      )}
    </section>
  );
}
