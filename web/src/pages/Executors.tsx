// Executors: GET /api/v1/executors, one row each.
import { t } from '../i18n';
import { request, type Executor } from '../lib/api';
import { formatInstant } from '../lib/format';
import { ErrorBox, useLoad } from '../components';

export function Executors() {
  const { data, error, loading, reload } = useLoad(() => request<{ items: Executor[] }>('GET', '/executors'), []);
  return (
    <section>
      <div class="page-head">
        <h1>{t('executors.title')}</h1>
        <button type="button" class="secondary" onClick={reload}>
          {t('common.refresh')}
        </button>
      </div>
      <ErrorBox error={error} />
      {loading && !data && <p>{t('common.loading')}</p>}
      {data && data.items.length === 0 && <p class="hint">{t('common.empty')}</p>}
      {data && data.items.length > 0 && (
        <div class="table-wrap card">
          <table id="executors-table">
            <thead>
              <tr>
                <th scope="col">{t('executors.id')}</th>
                <th scope="col">{t('executors.host')}</th>
                <th scope="col">{t('executors.kind')}</th>
                <th scope="col">{t('executors.state')}</th>
                <th scope="col" class="num">{t('executors.capacity')}</th>
                <th scope="col" class="num">{t('executors.running')}</th>
                <th scope="col" class="num">{t('executors.queued')}</th>
                <th scope="col" class="num">{t('executors.rate')}</th>
                <th scope="col">{t('executors.overloaded')}</th>
                <th scope="col">{t('executors.labels')}</th>
                <th scope="col">{t('executors.version')}</th>
                <th scope="col">{t('executors.started')}</th>
                <th scope="col">{t('executors.heartbeat')}</th>
                <th scope="col" class="num">{t('executors.spool')}</th>
              </tr>
            </thead>
            <tbody>
              {data.items.map((e) => (
                <tr key={e.id}>
                  <th scope="row">{e.id}</th>
                  <td>{e.host ?? '—'}</td>
                  <td>{e.kind ?? '—'}</td>
                  <td>
                    <span class={(e.state ?? 'online') === 'online' ? 'badge ok' : 'badge bad'}>{e.state ?? 'online'}</span>
                  </td>
                  <td class="num">{e.capacity ?? '—'}</td>
                  <td class="num">{e.running ?? '—'}</td>
                  <td class="num">{e.queued ?? '—'}</td>
                  <td class="num">{e.start_rate !== undefined ? e.start_rate.toFixed(1) : '—'}</td>
                  <td>{e.overloaded ? t('common.yes') : t('common.no')}</td>
                  <td>
                    {Object.entries(e.labels ?? {})
                      .map(([k, v]) => `${k}=${v}`)
                      .join(', ') || '—'}
                  </td>
                  <td>{e.version ?? '—'}</td>
                  <td>{formatInstant(e.started_at_ms ?? e.started_ms)}</td>
                  <td>{formatInstant(e.last_heartbeat_ms)}</td>
                  <td class="num">{e.spool?.pending ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
