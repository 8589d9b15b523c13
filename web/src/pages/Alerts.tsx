// Alerts: the four tables of GET /api/v1/alerts, each job row linking to its job.
import type { ComponentChildren } from 'preact';
import { t } from '../i18n';
import { request, type Alerts as AlertsData } from '../lib/api';
import { formatInstant, formatRfc3339 } from '../lib/format';
import { ErrorBox, jobHref, Link, useLoad } from '../components';

function Table(props: { id: string; title: string; heads: string[]; rows: ComponentChildren[][] }) {
  return (
    <section class="card" aria-labelledby={`${props.id}-h`}>
      <h2 id={`${props.id}-h`}>
        {props.title} <span class="count">{props.rows.length}</span>
      </h2>
      {props.rows.length === 0 ? (
        <p class="hint">{t('common.empty')}</p>
      ) : (
        <div class="table-wrap">
          <table id={props.id}>
            <thead>
              <tr>
                {props.heads.map((h) => (
                  <th scope="col" key={h}>
                    {h}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {props.rows.map((r, i) => (
                <tr key={i}>
                  {r.map((c, k) => (
                    <td key={k}>{c}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

const job = (name: string) => (name ? <Link href={jobHref(name)}>{name}</Link> : '—');

export function Alerts() {
  const { data, error, loading, reload } = useLoad(() => request<AlertsData>('GET', '/alerts'), []);
  const when = (v: string | number | null) => (typeof v === 'number' ? formatInstant(v * 1000) : formatRfc3339(v));
  return (
    <section>
      <div class="page-head">
        <h1>{t('alerts.title')}</h1>
        <button type="button" class="secondary" onClick={reload}>
          {t('common.refresh')}
        </button>
      </div>
      <ErrorBox error={error} />
      {loading && !data && <p>{t('common.loading')}</p>}
      {data?.incomplete && <p class="error">{t('alerts.incomplete', { msg: data.incomplete })}</p>}
      {data && (
        <>
          <Table
            id="alerts-abnormal"
            title={t('alerts.abnormal')}
            heads={[t('alerts.job'), t('alerts.domain'), t('alerts.domainLevel'), t('alerts.jobLevel'), t('alerts.scheduledAt'), t('alerts.reason'), t('alerts.since')]}
            rows={data.abnormal_jobs.map((a) => [job(a.job), a.domain || '—', a.domain_level, a.job_level, when(a.scheduled_at), a.reason, formatInstant(a.since_ms)])}
          />
          <Table
            id="alerts-timeout"
            title={t('alerts.timedOut')}
            heads={[t('alerts.job'), t('alerts.domain'), t('alerts.domainLevel'), t('alerts.jobLevel'), t('alerts.secondsOver'), t('alerts.shards')]}
            rows={data.timed_out_shards.map((a) => [job(a.job), a.domain || '—', a.domain_level, a.job_level, a.seconds_over, a.shards.join(', ')])}
          />
          <Table
            id="alerts-noha"
            title={t('alerts.notHA')}
            heads={[t('alerts.job'), t('alerts.domain'), t('alerts.domainLevel'), t('alerts.jobLevel'), t('alerts.reason')]}
            rows={data.not_highly_available.map((a) => [job(a.job), a.domain || '—', a.domain_level, a.job_level, a.reason])}
          />
          <Table
            id="alerts-resources"
            title={t('alerts.resources')}
            heads={[t('alerts.resource'), t('alerts.domain'), t('alerts.domainLevel'), t('alerts.reason'), t('alerts.since')]}
            rows={data.abnormal_resources.map((a) => [<Link href="/executors">{a.resource}</Link>, a.domain || '—', a.domain_level, a.reason, formatInstant(a.since_ms)])}
          />
        </>
      )}
    </section>
  );
}
