// Domains: the organisation tree (built here from the paged GET /api/v1/domains list),
// each domain's level and limits, a form to add one (POST) and to edit one (PUT with
// If-Match).  The API has no move or rename of a domain; the page says so.
import { useState } from 'preact/hooks';
import { t } from '../i18n';
import { ApiError, qs, request, type Page } from '../lib/api';
import { buildTree, flatten, type Domain } from '../lib/domaintree';
import { ErrorBox, useLoad } from '../components';

/** Every domain: GET /domains page by page (1000 a page) until `next` is null. */
async function allDomains(): Promise<Domain[]> {
  const out: Domain[] = [];
  let cursor: string | null = null;
  do {
    const page: Page<Domain> = await request<Page<Domain>>('GET', `/domains${qs({ limit: 1000, cursor })}`);
    out.push(...page.items);
    cursor = page.next;
  } while (cursor);
  return out;
}

const domainPath = (p: string) => `/domains/${encodeURIComponent(p)}`;

interface DomainForm {
  path: string;
  level: string;
  description: string;
  max_jobs: string;
  min_interval: string;
  max_shards: string;
}

const FIELDS: (keyof DomainForm)[] = ['path', 'level', 'description', 'max_jobs', 'min_interval', 'max_shards'];

function formOf(d: Domain | null, path = ''): DomainForm {
  return {
    path: d?.path ?? path,
    level: String(d?.level ?? 5),
    description: d?.description ?? '',
    max_jobs: String(d?.limits?.max_jobs ?? 0),
    min_interval: String(d?.limits?.min_interval ?? 0),
    max_shards: String(d?.limits?.max_shards ?? 0),
  };
}

/** A whole number where one is expected; anything else is sent as it is, for the server to name. */
function num(s: string): number | string {
  return /^\s*-?\d+\s*$/.test(s) ? Number(s) : s;
}

/** The form field a server error names ("limits.max_jobs" → max_jobs). */
function fieldOf(f: string | null): keyof DomainForm | null {
  if (!f) return null;
  const last = f.replace(/^limits\./, '') as keyof DomainForm;
  return FIELDS.includes(last) ? last : null;
}

type Editing = { mode: 'new'; parent: string } | { mode: 'edit'; domain: Domain };

export function Domains() {
  const list = useLoad(allDomains, []);
  const [editing, setEditing] = useState<Editing | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const nodes = list.data ? flatten(buildTree(list.data)) : [];

  const startEdit = async (path: string) => {
    setNotice(null);
    try {
      setEditing({ mode: 'edit', domain: await request<Domain>('GET', domainPath(path)) });
    } catch (e) {
      setNotice(e instanceof Error ? e.message : String(e));
    }
  };

  return (
    <section>
      <div class="page-head">
        <h1>{t('domains.title')}</h1>
        <div class="row">
          <button type="button" id="domain-add" onClick={() => (setNotice(null), setEditing({ mode: 'new', parent: '' }))}>
            {t('domains.add')}
          </button>
          <button type="button" class="secondary" onClick={list.reload}>
            {t('common.refresh')}
          </button>
        </div>
      </div>
      <p class="hint">{t('domains.intro')}</p>
      {notice && (
        <p class="notice" role="status" id="domain-notice">
          {notice}
        </p>
      )}
      {editing && (
        <DomainEditor
          key={editing.mode === 'new' ? `new:${editing.parent}` : `edit:${editing.domain.path}:${editing.domain.version}`}
          editing={editing}
          onCancel={() => setEditing(null)}
          onSaved={(msg) => {
            setEditing(null);
            setNotice(msg);
            list.reload();
          }}
        />
      )}
      <section class="card">
        <h2>{t('domains.tree')}</h2>
        <ErrorBox error={list.error} />
        {list.loading && !list.data && <p>{t('common.loading')}</p>}
        {list.data && nodes.length === 0 && <p class="hint">{t('domains.empty')}</p>}
        {nodes.length > 0 && (
          <div class="table-wrap">
            <table id="domains-table">
              <thead>
                <tr>
                  <th scope="col">{t('domains.path')}</th>
                  <th scope="col" class="num">{t('domains.level')}</th>
                  <th scope="col" class="num">{t('domains.maxJobs')}</th>
                  <th scope="col" class="num">{t('domains.minInterval')}</th>
                  <th scope="col" class="num">{t('domains.maxShards')}</th>
                  <th scope="col">{t('domains.description')}</th>
                  <th scope="col">{t('domains.actions')}</th>
                </tr>
              </thead>
              <tbody>
                {nodes.map((n) => {
                  const d = n.domain;
                  const lim = (v: number | undefined) => (v ? String(v) : <span class="sub">{t('domains.noLimit')}</span>);
                  return (
                    <tr key={n.path} data-domain={n.path} data-depth={n.depth}>
                      <th scope="row" class="tree-name" style={{ paddingLeft: `${0.5 + n.depth * 1.5}rem` }} title={n.path}>
                        {n.depth > 0 && <span aria-hidden="true" class="tree-branch">└ </span>}
                        <span class="tree-label">{n.name}</span>
                        <span class="visually-hidden"> ({n.path})</span>
                      </th>
                      {d ? (
                        <>
                          <td class="num">{d.level}</td>
                          <td class="num">{lim(d.limits?.max_jobs)}</td>
                          <td class="num">{lim(d.limits?.min_interval)}</td>
                          <td class="num">{lim(d.limits?.max_shards)}</td>
                          <td>{d.description || '—'}</td>
                        </>
                      ) : (
                        <td colSpan={5} class="sub">
                          {t('domains.notCreated')}
                        </td>
                      )}
                      <td class="row">
                        {d && (
                          <button type="button" class="secondary" aria-label={`${t('domains.editButton')} ${n.path}`} onClick={() => startEdit(n.path)}>
                            {t('domains.editButton')}
                          </button>
                        )}
                        <button
                          type="button"
                          class="secondary"
                          aria-label={`${t('domains.addChild')}: ${n.path}`}
                          onClick={() => (setNotice(null), setEditing({ mode: 'new', parent: n.path }))}
                        >
                          {t('domains.addChild')}
                        </button>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <section class="card" id="domain-move">
        <h2>{t('domains.move')}</h2>
        <p>{t('domains.moveNote')}</p>
      </section>
    </section>
  );
}

function DomainEditor(props: { editing: Editing; onCancel: () => void; onSaved: (msg: string) => void }) {
  const ed = props.editing;
  const [f, setF] = useState<DomainForm>(() => (ed.mode === 'edit' ? formOf(ed.domain) : formOf(null, ed.parent ? `${ed.parent}/` : '')));
  const [error, setError] = useState<{ msg: string; field: keyof DomainForm | null; raw: string | null } | null>(null);
  const [busy, setBusy] = useState(false);

  const save = async (e: Event) => {
    e.preventDefault();
    setError(null);
    const body = {
      path: f.path.trim(),
      level: num(f.level),
      description: f.description,
      limits: { max_jobs: num(f.max_jobs), min_interval: num(f.min_interval), max_shards: num(f.max_shards) },
    };
    setBusy(true);
    try {
      if (ed.mode === 'new') {
        await request<Domain>('POST', '/domains', body);
        props.onSaved(t('domains.created', { path: body.path }));
      } else {
        const d = await request<Domain>('PUT', domainPath(ed.domain.path), body, { ifMatch: ed.domain.version });
        props.onSaved(t('domains.saved', { path: d.path, v: d.version ?? '' }));
      }
    } catch (err) {
      if (err instanceof ApiError) {
        const msg = err.status === 412 && ed.mode === 'edit' ? `${t('domains.conflict', { v: ed.domain.version ?? '' })} (${err.message})` : err.message;
        setError({ msg, field: fieldOf(err.field), raw: err.field });
      } else setError({ msg: String(err), field: null, raw: null });
    } finally {
      setBusy(false);
    }
  };

  const input = (k: keyof DomainForm, label: string, opts: { type?: string; hint?: string; disabled?: boolean; wide?: boolean } = {}) => {
    const bad = error?.field === k;
    const id = `d-${k}`;
    const described = [opts.hint ? `${id}-hint` : '', bad ? `${id}-error` : ''].filter(Boolean).join(' ') || undefined;
    return (
      <div class={opts.wide ? 'field wide' : 'field'}>
        <label for={id}>{label}</label>
        <input
          id={id}
          name={k}
          type={opts.type ?? 'text'}
          inputMode={opts.type === 'number' ? 'numeric' : undefined}
          value={f[k]}
          disabled={opts.disabled}
          aria-invalid={bad ? true : undefined}
          aria-describedby={described}
          onInput={(e) => setF({ ...f, [k]: (e.target as HTMLInputElement).value })}
        />
        {opts.hint && (
          <span class="hint" id={`${id}-hint`}>
            {opts.hint}
          </span>
        )}
        {bad && (
          <span class="error" id={`${id}-error`} data-field-error={k}>
            {error!.msg}
          </span>
        )}
      </div>
    );
  };

  return (
    <section class="card" id="domain-form" aria-labelledby="domain-form-title">
      <h2 id="domain-form-title">{ed.mode === 'new' ? t('domains.add') : t('domains.edit', { path: ed.domain.path })}</h2>
      <form onSubmit={save}>
        {error && (
          <p class="error" role="alert" id="domain-error">
            {error.raw ? t('domains.fieldError', { field: error.raw, msg: error.msg }) : t('common.error', { msg: error.msg })}
          </p>
        )}
        <div class="fields">
          {input('path', t('domains.path'), { hint: ed.mode === 'new' ? t('domains.pathHint') : t('domains.moveNote'), disabled: ed.mode === 'edit', wide: true })}
          {input('level', t('form.level'), { type: 'number' })}
          {input('description', t('domains.description'), { wide: true })}
          {input('max_jobs', t('domains.maxJobs'), { type: 'number', hint: t('domains.limitHint') })}
          {input('min_interval', t('domains.minInterval'), { type: 'number' })}
          {input('max_shards', t('domains.maxShards'), { type: 'number' })}
        </div>
        <div class="row">
          <button type="submit" disabled={busy}>
            {ed.mode === 'new' ? t('domains.create') : t('common.save')}
          </button>
          <button type="button" class="secondary" onClick={props.onCancel}>
            {t('common.cancel')}
          </button>
        </div>
      </form>
    </section>
  );
}
