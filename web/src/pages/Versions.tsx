// A job's versions (docs/api.md#versions-and-restore): the list (version, change, when,
// who), a side-by-side line diff of two versions' definitions (by default the one before
// the current against the current), and "Restore this version" with a confirm step.
import { useEffect, useRef, useState } from 'preact/hooks';
import { t } from '../i18n';
import { request, type Job } from '../lib/api';
import { definitionLines, diffLines, sideBySide } from '../lib/linediff';
import { formatInstant } from '../lib/format';
import { ErrorBox, useLoad } from '../components';

export interface VersionItem {
  version: number;
  op: 'create' | 'update' | 'delete';
  at_ms: number;
  at: string;
  who: string | null;
}

interface VersionList {
  items: VersionItem[];
  current: number | null;
}

/** The default pair: the version before the current one (not a deletion), and the current. */
export function defaultPair(list: VersionList): [number, number] | null {
  const defs = list.items.filter((v) => v.op !== 'delete').map((v) => v.version);
  const cur = list.current ?? defs[0];
  if (cur === undefined) return null;
  const before = defs.filter((v) => v < cur).sort((a, b) => b - a)[0];
  return [before ?? cur, cur];
}

export function Versions(props: { name: string; version: number | undefined; onRestored: (job: Job) => void }) {
  const base = `/jobs/${encodeURIComponent(props.name)}`;
  const list = useLoad(() => request<VersionList>('GET', `${base}/versions`), [props.name, props.version]);
  const [pair, setPair] = useState<[number, number] | null>(null);
  const [confirm, setConfirm] = useState<number | null>(null);
  const [result, setResult] = useState<{ msg: string; bad?: boolean } | null>(null);
  const [busy, setBusy] = useState(false);
  const yes = useRef<HTMLButtonElement>(null);

  // a new list (first load, or after a change of the job): back to previous vs current
  useEffect(() => {
    if (list.data) setPair(defaultPair(list.data));
  }, [list.data]);
  useEffect(() => {
    if (confirm !== null) yes.current?.focus();
  }, [confirm]);

  const restore = async (v: number) => {
    setBusy(true);
    setResult(null);
    try {
      const job = await request<Job>('POST', `${base}/restore`, { version: v }, { ifMatch: list.data?.current ?? undefined });
      setConfirm(null);
      setResult({ msg: t('versions.restored', { v, cur: job.version ?? '' }) });
      props.onRestored(job);
    } catch (e) {
      setResult({ msg: e instanceof Error ? e.message : String(e), bad: true });
    } finally {
      setBusy(false);
    }
  };

  const data = list.data;
  const defs = data ? data.items.filter((v) => v.op !== 'delete') : [];
  return (
    <section class="card" id="versions" aria-labelledby="versions-title">
      <h2 id="versions-title">{t('versions.title')}</h2>
      <ErrorBox error={list.error} />
      {result && (
        <p class={result.bad ? 'error' : 'notice'} role="status" id="restore-result">
          {result.msg}
        </p>
      )}
      {data && (
        <div class="table-wrap">
          <table id="versions-table">
            <thead>
              <tr>
                <th scope="col" class="num">{t('versions.version')}</th>
                <th scope="col">{t('versions.op')}</th>
                <th scope="col">{t('versions.at')}</th>
                <th scope="col">{t('versions.who')}</th>
                <th scope="col">
                  <span class="visually-hidden">{t('versions.restore')}</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {data.items.map((v) => (
                <tr key={v.version} data-version={v.version} class={v.version === data.current ? 'current-version' : undefined}>
                  <th scope="row" class="num">
                    {v.version}
                    {v.version === data.current && <span class="badge ok"> {t('versions.current')}</span>}
                  </th>
                  <td>{v.op}</td>
                  <td title={v.at}>{formatInstant(v.at_ms)}</td>
                  <td>{v.who ?? '—'}</td>
                  <td>
                    {v.op === 'delete' ? (
                      <span class="sub">{t('versions.deleted')}</span>
                    ) : (
                      v.version !== data.current && (
                        <button type="button" class="secondary" data-restore={v.version} aria-label={`${t('versions.restore')} (${v.version})`} onClick={() => (setResult(null), setConfirm(v.version))}>
                          {t('versions.restore')}
                        </button>
                      )
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {confirm !== null && data && (
        <div class="notice" role="alertdialog" aria-labelledby="restore-confirm-text" id="restore-confirm" onKeyDown={(e) => e.key === 'Escape' && setConfirm(null)}>
          <p id="restore-confirm-text">{t('versions.confirm', { v: confirm, cur: data.current ?? '—' })}</p>
          <div class="row">
            <button type="button" ref={yes} disabled={busy} onClick={() => restore(confirm)} id="restore-yes">
              {t('versions.confirmYes', { v: confirm })}
            </button>
            <button type="button" class="secondary" onClick={() => setConfirm(null)}>
              {t('common.cancel')}
            </button>
          </div>
        </div>
      )}
      {data && defs.length < 2 && <p class="hint">{t('versions.one')}</p>}
      {data && defs.length >= 2 && pair && (
        <>
          <h3>{t('versions.compare')}</h3>
          <div class="filters">
            {(['old', 'new'] as const).map((side, i) => (
              <div class="field" key={side}>
                <label for={`v-${side}`}>{t(side === 'old' ? 'versions.old' : 'versions.new')}</label>
                <select
                  id={`v-${side}`}
                  value={String(pair[i])}
                  onChange={(e) => {
                    const v = Number((e.target as HTMLSelectElement).value);
                    setPair(i === 0 ? [v, pair[1]] : [pair[0], v]);
                  }}
                >
                  {defs.map((v) => (
                    <option key={v.version} value={String(v.version)}>
                      {v.version}
                      {v.version === data.current ? ` (${t('versions.current')})` : ''}
                    </option>
                  ))}
                </select>
              </div>
            ))}
          </div>
          <Diff base={base} a={pair[0]} b={pair[1]} />
        </>
      )}
    </section>
  );
}

function Diff(props: { base: string; a: number; b: number }) {
  const defs = useLoad(
    () => Promise.all([props.a, props.b].map((v) => request<Record<string, unknown>>('GET', `${props.base}/versions/${v}`))),
    [props.base, props.a, props.b],
  );
  if (defs.error) return <ErrorBox error={defs.error} />;
  if (!defs.data) return <p>{t('common.loading')}</p>;
  const ops = diffLines(definitionLines(defs.data[0]), definitionLines(defs.data[1]));
  const del = ops.filter((o) => o.op === 'del').length;
  const add = ops.filter((o) => o.op === 'add').length;
  const rows = sideBySide(ops);
  const cell = (s: { n: number; text: string; kind: string } | null, which: string) =>
    s ? (
      <>
        <td class={`ln ${s.kind}`}>
          {s.kind === 'del' ? '− ' : s.kind === 'add' ? '+ ' : ''}
          {s.n}
        </td>
        <td class={s.kind} data-diff={s.kind === 'same' ? undefined : s.kind}>
          {s.kind !== 'same' && <span class="visually-hidden">{t(s.kind === 'del' ? 'versions.removed' : 'versions.added')}: </span>}
          {s.text}
        </td>
      </>
    ) : (
      <>
        <td class="ln blank" />
        <td class="blank" data-side={which} />
      </>
    );
  return (
    <div id="version-diff">
      <p class="sub" aria-live="polite">
        {t('versions.diff', { a: props.a, b: props.b })} · {del === 0 && add === 0 ? t('versions.same') : t('versions.changes', { del, add })}
      </p>
      <div class="diff-wrap" tabIndex={0} role="region" aria-label={t('versions.diff', { a: props.a, b: props.b })}>
        <table class="diff">
          <colgroup>
            <col style={{ width: '3.2rem' }} />
            <col />
            <col style={{ width: '3.2rem' }} />
            <col />
          </colgroup>
          <thead class="visually-hidden">
            <tr>
              <th scope="col">#</th>
              <th scope="col">{t('versions.old')}</th>
              <th scope="col">#</th>
              <th scope="col">{t('versions.new')}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r, i) => (
              <tr key={i}>
                {cell(r.left, 'left')}
                {cell(r.right, 'right')}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}
