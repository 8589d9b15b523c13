// Overview: what ran, what failed, how late and how long, per day and per domain, the
// busiest and the most failing jobs, and the executors online (GET /api/v1/stats,
// /api/v1/executors).
import { useMemo, useState } from 'preact/hooks';
import { t } from '../i18n';
import { qs, request, type Executor, type StatsGroup } from '../lib/api';
import { formatDuration, formatNumber } from '../lib/format';
import { everyDay } from '../lib/stats';
import { Chart, ErrorBox, jobHref, Link, useLoad } from '../components';
import type { EChartsOption } from '../lib/echarts';

interface Data {
  days: StatsGroup[];
  domains: StatsGroup[];
  busiest: StatsGroup[];
  failing: StatsGroup[];
  executors: Executor[];
}

const PERIODS = [7, 14, 30, 90];

async function load(days: number): Promise<Data> {
  const since = Math.floor(Date.now() / 1000) - days * 86400;
  const stats = (by: string, extra: Record<string, string | number> = {}) =>
    request<{ groups: StatsGroup[] }>('GET', `/stats${qs({ group_by: by, since, ...extra })}`).then((r) => r.groups);
  const [d, dom, busy, fail, ex] = await Promise.all([
    stats('day'),
    stats('domain'),
    stats('job', { sort: 'runs', limit: 10 }),
    stats('job', { sort: 'failed', limit: 10 }),
    request<{ items: Executor[] }>('GET', '/executors'),
  ]);
  return { days: everyDay(d, since), domains: dom, busiest: busy, failing: fail.filter((g) => g.failed > 0), executors: ex.items };
}


const sum = (gs: StatsGroup[], k: keyof StatsGroup) => gs.reduce((a, g) => a + (Number(g[k]) || 0), 0);

const COLORS = { ok: '#2e7d32', failed: '#c62828', timeouts: '#ef6c00', misfired: '#6a1b9a', skipped: '#546e7a' };

function countsOption(groups: StatsGroup[], horizontal: boolean, rootLabel: string): EChartsOption {
  const cats = groups.map((g) => (g.key === '' ? rootLabel : g.key));
  const series = [
    { name: t('overview.succeeded'), key: 'succeeded', color: COLORS.ok },
    { name: t('overview.failed'), key: 'failed', color: COLORS.failed },
    { name: t('overview.timeouts'), key: 'timeouts', color: COLORS.timeouts },
    { name: t('overview.misfired'), key: 'misfired', color: COLORS.misfired },
    { name: t('overview.skipped'), key: 'skipped', color: COLORS.skipped },
  ] as const;
  const cat = { type: 'category', data: cats };
  const val = { type: 'value', minInterval: 1 };
  return {
    animation: false,
    tooltip: { trigger: 'axis' },
    legend: { top: 0 },
    grid: { left: horizontal ? 120 : 48, right: 16, top: 40, bottom: 32, containLabel: false },
    xAxis: horizontal ? val : cat,
    yAxis: horizontal ? cat : val,
    series: series.map((s) => ({
      name: s.name,
      type: 'bar',
      stack: 'n',
      barMaxWidth: 28,
      itemStyle: { color: s.color },
      data: groups.map((g) => g[s.key]),
    })),
  };
}

function percentilesOption(days: StatsGroup[]): EChartsOption {
  const line = (name: string, data: (number | null)[]) => ({ name, type: 'line', connectNulls: true, data });
  return {
    animation: false,
    tooltip: { trigger: 'axis' },
    legend: { top: 0 },
    grid: { left: 56, right: 16, top: 40, bottom: 32 },
    xAxis: { type: 'category', data: days.map((d) => d.key) },
    yAxis: { type: 'value', name: 'ms' },
    series: [
      line(t('overview.durationP50'), days.map((d) => d.duration_ms.p50)),
      line(t('overview.durationP95'), days.map((d) => d.duration_ms.p95)),
      line(t('overview.latenessP50'), days.map((d) => d.lateness_ms.p50)),
      line(t('overview.latenessP99'), days.map((d) => d.lateness_ms.p99)),
    ],
  };
}

export function Overview() {
  const [days, setDays] = useState(14);
  const { data, error, loading, reload } = useLoad(() => load(days), [days]);
  const root = t('overview.rootDomain');
  const perDay = useMemo(() => (data ? countsOption(data.days, false, root) : null), [data, root]);
  const perDomain = useMemo(() => (data ? countsOption(data.domains, true, root) : null), [data, root]);
  const pct = useMemo(() => (data ? percentilesOption(data.days) : null), [data, root]);
  const online = data ? data.executors.filter((e) => (e.state ?? 'online') === 'online').length : 0;

  return (
    <section>
      <div class="page-head">
        <h1>{t('overview.title')}</h1>
        <div class="row">
          <label for="period">{t('overview.period')}</label>
          <select id="period" value={days} onChange={(e) => setDays(Number((e.target as HTMLSelectElement).value))}>
            {PERIODS.map((p) => (
              <option key={p} value={p}>
                {t('overview.days', { n: p })}
              </option>
            ))}
          </select>
          <button type="button" class="secondary" onClick={reload}>
            {t('common.refresh')}
          </button>
        </div>
      </div>
      <ErrorBox error={error} />
      {loading && !data && <p>{t('common.loading')}</p>}
      {data && (
        <>
          <ul class="cards" aria-label={t('overview.title')}>
            <li class="card stat"><span>{t('overview.runs')}</span><strong data-stat="runs">{formatNumber(sum(data.days, 'runs'))}</strong></li>
            <li class="card stat"><span>{t('overview.failed')}</span><strong class="bad" data-stat="failed">{formatNumber(sum(data.days, 'failed'))}</strong></li>
            <li class="card stat"><span>{t('overview.timeouts')}</span><strong class="warn">{formatNumber(sum(data.days, 'timeouts'))}</strong></li>
            <li class="card stat"><span>{t('overview.misfired')}</span><strong>{formatNumber(sum(data.days, 'misfired'))}</strong></li>
            <li class="card stat"><span>{t('overview.skipped')}</span><strong>{formatNumber(sum(data.days, 'skipped'))}</strong></li>
            <li class="card stat">
              <span>{t('overview.executorsOnline')}</span>
              <strong data-stat="executors">
                {online} / {data.executors.length}
              </strong>
            </li>
          </ul>
          {sum(data.days, 'runs') + sum(data.days, 'skipped') === 0 && <p class="hint">{t('overview.noRuns')}</p>}
          <div class="grid2">
            <figure class="card">
              <figcaption>{t('overview.perDay')}</figcaption>
              {perDay && <Chart option={perDay} label={t('overview.perDay')} id="chart-day" />}
            </figure>
            <figure class="card">
              <figcaption>{t('overview.perDomain')}</figcaption>
              {perDomain && <Chart option={perDomain} label={t('overview.perDomain')} id="chart-domain" />}
            </figure>
            <figure class="card">
              <figcaption>{t('overview.percentiles')}</figcaption>
              {pct && <Chart option={pct} label={t('overview.percentiles')} id="chart-pct" />}
            </figure>
            <section class="card">
              <h2>{t('overview.domainTable')}</h2>
              <StatsTable groups={data.domains} rootLabel={root} />
            </section>
            <section class="card">
              <h2>{t('overview.busiest')}</h2>
              <StatsTable groups={data.busiest} jobs />
            </section>
            <section class="card">
              <h2>{t('overview.failing')}</h2>
              <StatsTable groups={data.failing} jobs />
            </section>
          </div>
        </>
      )}
    </section>
  );
}

function StatsTable(props: { groups: StatsGroup[]; jobs?: boolean; rootLabel?: string }) {
  if (props.groups.length === 0) return <p class="hint">{t('common.empty')}</p>;
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th scope="col">{props.jobs ? t('alerts.job') : t('alerts.domain')}</th>
            <th scope="col" class="num">{t('overview.runs')}</th>
            <th scope="col" class="num">{t('overview.failed')}</th>
            <th scope="col" class="num">{t('overview.timeouts')}</th>
            <th scope="col" class="num">{t('overview.misfired')}</th>
            <th scope="col" class="num">{t('overview.durationP95')}</th>
            <th scope="col" class="num">{t('overview.latenessP99')}</th>
          </tr>
        </thead>
        <tbody>
          {props.groups.map((g) => (
            <tr key={g.key}>
              <th scope="row">{props.jobs ? <Link href={jobHref(g.key)}>{g.key}</Link> : g.key === '' ? props.rootLabel : g.key}</th>
              <td class="num">{formatNumber(g.runs)}</td>
              <td class="num">{formatNumber(g.failed)}</td>
              <td class="num">{formatNumber(g.timeouts)}</td>
              <td class="num">{formatNumber(g.misfired)}</td>
              <td class="num">{formatDuration(g.duration_ms.p95)}</td>
              <td class="num">{formatDuration(g.lateness_ms.p99)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
