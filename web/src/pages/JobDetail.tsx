// A job: its definition, actions (edit, enable/disable, run now), its shards and where
// each ran, its history with filters and the output of a run (followed while it runs),
// a chart of recent durations and lateness, and its versions (diff, restore).
import { useEffect, useMemo, useState } from 'preact/hooks';
import { t } from '../i18n';
import { qs, request, type HistoryItem, type Job, type Page, type Run } from '../lib/api';
import { formatDuration, formatInstant, formatRfc3339 } from '../lib/format';
import { useLocation } from '../lib/router';
import { Chart, ErrorBox, Link, useLoad } from '../components';
import type { EChartsOption } from '../lib/echarts';
import { Versions } from './Versions';

const STATUSES = ['succeeded', 'failed', 'timeout', 'canceled', 'interrupted', 'lost', 'misfired', 'queued', 'running', 'skipped'];

export function JobDetail(props: { name: string }) {
  const name = props.name;
  const path = `/jobs/${encodeURIComponent(name)}`;
  const loc = useLocation();
  const saved = loc.query.get('saved');
  const job = useLoad(() => request<Job>('GET', path), [name]);
  const recent = useLoad(() => request<Page<HistoryItem>>('GET', `/history${qs({ job: name, limit: 200 })}`), [name]);
  const [action, setAction] = useState<{ msg: string; bad?: boolean } | null>(null);
  const [outputRun, setOutputRun] = useState<string | null>(null);

  const act = async (what: 'enable' | 'disable' | 'run') => {
    setAction(null);
    try {
      if (what === 'run') {
        const r = await request<{ runs: { run_id: string; shard: number }[]; skipped: { shard: number; reason: string }[] }>('POST', `${path}/run`);
        const runs = r.runs.map((x) => `#${x.shard} ${x.run_id}`).join(', ');
        const skipped = r.skipped.map((x) => `#${x.shard} ${x.reason}`).join(', ');
        setAction({ msg: [runs && t('job.started', { runs }), skipped && t('job.skippedShards', { list: skipped })].filter(Boolean).join(' · ') });
        if (r.runs.length > 0) setOutputRun(r.runs[0].run_id);
        setTimeout(recent.reload, 300);
      } else {
        await request<Job>('POST', `${path}/${what}`);
        job.reload();
      }
    } catch (e) {
      setAction({ msg: e instanceof Error ? e.message : String(e), bad: true });
    }
  };

  if (job.loading && !job.data) return <p>{t('common.loading')}</p>;
  if (!job.data) return <ErrorBox error={job.error} />;
  const j = job.data;

  return (
    <section>
      <div class="page-head">
        <h1>{t('job.title', { name: j.name })}</h1>
        <div class="row">
          <span class={j.enabled ? 'badge ok' : 'badge off'} id="job-state">
            {j.enabled ? t('jobs.enabled') : t('jobs.disabled')}
          </span>
          <Link href={`${path}/edit`} class="button secondary">
            {t('job.edit')}
          </Link>
          <button type="button" class="secondary" onClick={() => act(j.enabled ? 'disable' : 'enable')}>
            {j.enabled ? t('job.disable') : t('job.enable')}
          </button>
          <button type="button" id="run-now" onClick={() => act('run')}>
            {t('job.runNow')}
          </button>
        </div>
      </div>
      {saved && !action && (
        <p class="notice" role="status">
          {t('form.saved', { v: saved })}{' '}
          <button type="button" onClick={() => act('run')}>
            {t('form.runOnce')}
          </button>
        </p>
      )}
      {action && (
        <p class={action.bad ? 'error' : 'notice'} role="status" id="action-result">
          {action.msg}
        </p>
      )}
      {outputRun && <RunOutput id={outputRun} onEnd={recent.reload} onClose={() => setOutputRun(null)} />}

      <div class="grid2">
        <section class="card">
          <h2>{t('job.definition')}</h2>
          <Definition job={j} />
        </section>
        <section class="card">
          <h2>{t('job.shards')}</h2>
          <Shards job={j} recent={recent.data?.items ?? []} onOutput={setOutputRun} />
          <p class="hint">{t('job.placementNote')}</p>
        </section>
      </div>
      <section class="card">
        <h2>{t('job.chart')}</h2>
        <RunsChart items={recent.data?.items ?? []} />
      </section>
      <Versions name={name} version={j.version} onRestored={() => job.reload()} />
      <History name={name} zone={j.time_zone} onOutput={setOutputRun} />
    </section>
  );
}

function Definition(props: { job: Job }) {
  const j = props.job;
  const rows: [string, string][] = [
    [t('form.domain'), j.domain || '—'],
    [t('form.level'), String(j.level)],
    [t('form.owner'), j.owner || '—'],
    [t('form.description'), j.description || '—'],
    [t('form.type'), j.type],
    [t('form.command'), j.command],
    [t('form.schedule'), j.schedule ?? '—'],
    [t('form.timeZone'), j.time_zone],
    [t('jobs.nextFire'), formatRfc3339(j.state?.next_fire, j.time_zone)],
    [t('form.shards'), String(j.shards)],
    [t('form.timeout'), String(j.timeout)],
    [t('form.retries'), String(j.retries)],
    [t('form.overlap'), j.overlap],
    [t('form.misfire'), `${j.misfire} (${j.misfire_threshold} s)`],
    [t('job.version', { v: j.version ?? '' }), ''],
  ];
  return (
    <>
      <dl class="defs">
        {rows.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{k === t('form.command') || k === t('form.schedule') ? <code>{v}</code> : v}</dd>
          </div>
        ))}
      </dl>
      <p class="hint">{t('job.zoneNote', { zone: j.time_zone })}</p>
      <details>
        <summary>{t('job.fullDefinition')}</summary>
        <pre class="json">{JSON.stringify(j, null, 2)}</pre>
      </details>
    </>
  );
}

function Shards(props: { job: Job; recent: HistoryItem[]; onOutput: (id: string) => void }) {
  const last = new Map<number, HistoryItem>();
  for (const h of props.recent) if (h.kind === 'run' && !last.has(h.shard)) last.set(h.shard, h);
  const n = Math.min(props.job.shards, 200);
  return (
    <div class="table-wrap">
      <table id="shards-table">
        <thead>
          <tr>
            <th scope="col">{t('job.shard')}</th>
            <th scope="col">{t('job.param')}</th>
            <th scope="col">{t('job.executor')}</th>
            <th scope="col">{t('job.lastStatus')}</th>
            <th scope="col">{t('job.lastRun')}</th>
          </tr>
        </thead>
        <tbody>
          {Array.from({ length: n }, (_, s) => {
            const h = last.get(s);
            return (
              <tr key={s}>
                <th scope="row">{s}</th>
                <td>{props.job.shard_params?.[String(s)] ?? '—'}</td>
                <td>{h?.executor ?? '—'}</td>
                <td>{h ? <StatusBadge status={h.status ?? ''} /> : '—'}</td>
                <td>
                  {h?.run_id ? (
                    <button type="button" class="link" onClick={() => props.onOutput(h.run_id!)}>
                      {formatInstant(h.started_at_ms ?? h.scheduled_at * 1000)}
                    </button>
                  ) : (
                    '—'
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

export function StatusBadge(props: { status: string }) {
  const s = props.status;
  const cls = s === 'succeeded' ? 'ok' : s === 'running' || s === 'queued' ? 'info' : s === 'skipped' || s === 'canceled' ? 'off' : 'bad';
  return <span class={`badge ${cls}`}>{s}</span>;
}

function RunsChart(props: { items: HistoryItem[] }) {
  const option = useMemo<EChartsOption>(() => {
    const runs = props.items.filter((h) => h.kind === 'run' && h.started_at_ms).reverse();
    return {
      animation: false,
      tooltip: { trigger: 'axis' },
      legend: { top: 0 },
      grid: { left: 56, right: 16, top: 40, bottom: 32 },
      xAxis: { type: 'time' },
      yAxis: { type: 'value', name: 'ms' },
      series: [
        { name: t('job.duration'), type: 'line', showSymbol: true, data: runs.filter((r) => r.ended_at_ms).map((r) => [r.started_at_ms, (r.ended_at_ms ?? 0) - (r.started_at_ms ?? 0)]) },
        {
          name: t('job.lateness'),
          type: 'line',
          showSymbol: true,
          data: runs.filter((r) => r.trigger === 'schedule' || r.trigger === 'misfire').map((r) => [r.started_at_ms, (r.started_at_ms ?? 0) - r.scheduled_at * 1000]),
        },
      ],
    };
  }, [props.items]);
  if (!props.items.some((h) => h.kind === 'run')) return <p class="hint">{t('common.empty')}</p>;
  return <Chart option={option} label={t('job.chart')} id="chart-runs" />;
}

function History(props: { name: string; zone: string; onOutput: (id: string) => void }) {
  const [status, setStatus] = useState('');
  const [since, setSince] = useState('');
  const [stack, setStack] = useState<(string | null)[]>([null]);
  const cursor = stack[stack.length - 1];
  const sinceParam = since ? Math.floor(Date.parse(since) / 1000) : undefined;
  const page = useLoad(() => request<Page<HistoryItem>>('GET', `/history${qs({ job: props.name, status, since: sinceParam, limit: 25, cursor })}`), [props.name, status, since, cursor]);
  useEffect(() => {
    const timer = setInterval(() => stack.length === 1 && page.reload(), 5000);
    return () => clearInterval(timer);
  }, [stack.length]);
  return (
    <section class="card">
      <h2>{t('job.history')}</h2>
      <div class="filters">
        <div class="field">
          <label for="h-status">{t('job.status')}</label>
          <select
            id="h-status"
            value={status}
            onChange={(e) => {
              setStatus((e.target as HTMLSelectElement).value);
              setStack([null]);
            }}
          >
            <option value="">{t('job.anyStatus')}</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="h-since">{t('job.since')}</label>
          <input
            id="h-since"
            type="datetime-local"
            value={since}
            onChange={(e) => {
              setSince((e.target as HTMLInputElement).value);
              setStack([null]);
            }}
          />
        </div>
        <button type="button" class="secondary" onClick={page.reload}>
          {t('common.refresh')}
        </button>
      </div>
      <ErrorBox error={page.error} />
      {page.data && page.data.items.length === 0 && <p class="hint">{t('common.empty')}</p>}
      {page.data && page.data.items.length > 0 && (
        <div class="table-wrap">
          <table id="history-table">
            <thead>
              <tr>
                <th scope="col">{t('job.scheduled')}</th>
                <th scope="col">{t('job.shard')}</th>
                <th scope="col">{t('job.status')}</th>
                <th scope="col">{t('job.trigger')}</th>
                <th scope="col">{t('job.started_at')}</th>
                <th scope="col" class="num">{t('job.duration')}</th>
                <th scope="col">{t('job.executor')}</th>
                <th scope="col">{t('job.showOutput')}</th>
              </tr>
            </thead>
            <tbody>
              {page.data.items.map((h, i) => (
                <tr key={h.run_id ?? `skip-${i}`}>
                  <td>{formatInstant(h.scheduled_at * 1000, props.zone)}</td>
                  <td>{h.shard}</td>
                  <td>
                    <StatusBadge status={h.kind === 'skip' ? 'skipped' : h.status ?? ''} />
                    {h.kind === 'skip' && <span class="sub"> {h.reason}</span>}
                  </td>
                  <td>{h.trigger ?? '—'}</td>
                  <td>{formatInstant(h.started_at_ms)}</td>
                  <td class="num">{h.started_at_ms && h.ended_at_ms ? formatDuration(h.ended_at_ms - h.started_at_ms) : '—'}</td>
                  <td>{h.executor ?? '—'}</td>
                  <td>
                    {h.run_id && (
                      <button type="button" class="link" onClick={() => props.onOutput(h.run_id!)}>
                        {t('job.showOutput')}
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {page.data && (
        <nav class="pager" aria-label={t('job.history')}>
          <button type="button" class="secondary" disabled={stack.length <= 1} onClick={() => setStack(stack.slice(0, -1))}>
            {t('common.prev')}
          </button>
          <span>{t('jobs.page', { n: stack.length })}</span>
          <button type="button" class="secondary" disabled={!page.data.next} onClick={() => setStack([...stack, page.data!.next])}>
            {t('common.next')}
          </button>
        </nav>
      )}
    </section>
  );
}

/** A run's status and output, read again every second while it is queued or running. */
function RunOutput(props: { id: string; onEnd: () => void; onClose: () => void }) {
  const [run, setRun] = useState<Run | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async () => {
      try {
        const r = await request<Run>('GET', `/runs/${encodeURIComponent(props.id)}`);
        if (!live) return;
        setRun(r);
        if (r.status === 'queued' || r.status === 'running') timer = setTimeout(poll, 1000);
        else props.onEnd();
      } catch (e) {
        if (live) setError(e);
      }
    };
    poll();
    return () => {
      live = false;
      if (timer) clearTimeout(timer);
    };
  }, [props.id]);
  return (
    <section class="card output" id="run-output" aria-live="polite">
      <div class="page-head">
        <h2>{t('job.output', { id: props.id })}</h2>
        <button type="button" class="secondary" onClick={props.onClose}>
          {t('common.close')}
        </button>
      </div>
      <ErrorBox error={error} />
      {run && (
        <>
          <p>
            <StatusBadge status={run.status ?? ''} /> {t('job.shard')} {run.shard} · {t('job.exit')} {run.exit_code ?? '—'} ·{' '}
            {run.started_at_ms && run.ended_at_ms ? formatDuration(run.ended_at_ms - run.started_at_ms) : ''}
          </p>
          {run.error && <p class="error">{run.error}</p>}
          <pre class="log" id="run-output-text">{run.output ? run.output : t('job.noOutput')}</pre>
        </>
      )}
    </section>
  );
}
