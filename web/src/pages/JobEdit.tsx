// Create or edit a job: every field of docs/jobs.md, the live cron check beside the
// schedule, and save with POST (new) or PUT with If-Match (edit) so a colleague's change
// is not overwritten.  After saving, "Run once now" starts it at once.
import { useMemo, useState } from 'preact/hooks';
import { t } from '../i18n';
import { ApiError, request, type Job } from '../lib/api';
import { emptyForm, FormError, formFromJob, jobFromForm, type JobForm } from '../lib/jobform';
import { timeZones } from '../lib/format';
import { navigate } from '../lib/router';
import { ErrorBox, Field, jobHref, Link, useLoad } from '../components';
import { CronPreview } from './CronPreview';

export function JobEdit(props: { name?: string }) {
  const editing = props.name !== undefined;
  const loaded = useLoad(() => (editing ? request<Job>('GET', `/jobs/${encodeURIComponent(props.name!)}`) : Promise.resolve(null)), [props.name]);
  if (editing && loaded.loading && !loaded.data) return <p>{t('common.loading')}</p>;
  if (editing && !loaded.data) return <ErrorBox error={loaded.error} />;
  return <Form job={loaded.data ?? null} />;
}

function Form(props: { job: Job | null }) {
  const job = props.job;
  const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  const [f, setF] = useState<JobForm>(() => (job ? formFromJob(job) : emptyForm(browserZone)));
  const [error, setError] = useState<{ msg: string; field: string | null } | null>(null);
  const [busy, setBusy] = useState(false);
  const zones = useMemo(timeZones, []);

  const text = (k: keyof JobForm) => (e: Event) => setF({ ...f, [k]: (e.target as HTMLInputElement).value });
  const flag = (k: keyof JobForm) => (e: Event) => setF({ ...f, [k]: (e.target as HTMLInputElement).checked });
  const input = (k: keyof JobForm, label: string, opts: { type?: string; required?: boolean; disabled?: boolean; wide?: boolean; placeholder?: string } = {}) => (
    <Field label={label} id={`j-${k}`} wide={opts.wide}>
      <input
        id={`j-${k}`}
        name={k}
        type={opts.type ?? 'text'}
        value={f[k] as string}
        required={opts.required}
        disabled={opts.disabled}
        placeholder={opts.placeholder}
        aria-invalid={error?.field?.split(/[.[]/)[0] === k ? true : undefined}
        onInput={text(k)}
      />
    </Field>
  );
  const area = (k: keyof JobForm, label: string, rows = 3) => (
    <Field label={label} id={`j-${k}`} wide>
      <textarea id={`j-${k}`} name={k} rows={rows} value={f[k] as string} aria-invalid={error?.field?.split(/[.[]/)[0] === k ? true : undefined} onInput={text(k)} />
    </Field>
  );
  const select = (k: keyof JobForm, label: string, options: string[]) => (
    <Field label={label} id={`j-${k}`}>
      <select id={`j-${k}`} name={k} value={f[k] as string} onChange={text(k)}>
        {options.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    </Field>
  );
  const check = (k: keyof JobForm, label: string) => (
    <div class="field check">
      <input id={`j-${k}`} name={k} type="checkbox" checked={f[k] as boolean} onChange={flag(k)} />
      <label for={`j-${k}`}>{label}</label>
    </div>
  );

  const save = async (e: Event) => {
    e.preventDefault();
    setError(null);
    let body: Record<string, unknown>;
    try {
      body = jobFromForm(f);
    } catch (err) {
      if (err instanceof FormError) setError({ msg: t('form.badLine', { field: err.field, n: err.line, what: err.expected }), field: err.field });
      return;
    }
    setBusy(true);
    try {
      const saved = job
        ? await request<Job>('PUT', `/jobs/${encodeURIComponent(job.name)}`, body, { ifMatch: job.version })
        : await request<Job>('POST', '/jobs', body);
      navigate(`${jobHref(saved.name)}?saved=${saved.version ?? ''}`);
    } catch (err) {
      const field = err instanceof ApiError ? err.field : null;
      setError({ msg: t('form.refused', { msg: err instanceof Error ? err.message : String(err) }), field });
      setBusy(false);
    }
  };

  return (
    <section>
      <div class="page-head">
        <h1>{job ? t('form.editTitle', { name: job.name }) : t('form.newTitle')}</h1>
        {job && <span class="sub">{t('job.version', { v: job.version ?? '' })}</span>}
      </div>
      <form class="job-form" onSubmit={save} noValidate>
        <fieldset class="card">
          <legend>{t('form.identity')}</legend>
          {input('name', t('form.name'), { required: true, disabled: job !== null })}
          {input('domain', t('form.domain'))}
          {input('level', t('form.level'), { type: 'number' })}
          {input('owner', t('form.owner'))}
          {input('description', t('form.description'), { wide: true })}
          {check('enabled', t('form.enabled'))}
        </fieldset>

        <fieldset class="card">
          <legend>{t('form.when')}</legend>
          <Field label={t('form.schedule')} id="j-schedule" wide>
            <input id="j-schedule" name="schedule" class="mono" value={f.schedule} spellcheck={false} autoComplete="off" aria-describedby="cron-preview" aria-invalid={error?.field === 'schedule' ? true : undefined} onInput={text('schedule')} />
          </Field>
          <Field label={t('form.timeZone')} id="j-time_zone">
            <input id="j-time_zone" name="time_zone" list="zones" value={f.time_zone} onInput={text('time_zone')} />
            <datalist id="zones">
              {zones.map((z) => (
                <option key={z} value={z} />
              ))}
            </datalist>
          </Field>
          <div class="field wide">
            <CronPreview expression={f.schedule} zone={f.time_zone} />
          </div>
          {input('start_at', t('form.startAt'), { placeholder: '2026-01-01T00:00:00+08:00' })}
          {input('end_at', t('form.endAt'))}
          {area('pause_windows', t('form.pauseWindows'))}
          {input('cal_skip', t('form.calSkip'))}
          {input('cal_only', t('form.calOnly'))}
        </fieldset>

        <fieldset class="card">
          <legend>{t('form.what')}</legend>
          {select('type', t('form.type'), ['shell'])}
          {input('output_cap', t('form.outputCap'), { type: 'number' })}
          <Field label={t('form.command')} id="j-command" wide>
            <textarea id="j-command" name="command" class="mono" rows={3} required value={f.command} spellcheck={false} aria-invalid={error?.field === 'command' ? true : undefined} onInput={text('command')} />
          </Field>
          {input('workdir', t('form.workdir'))}
          {input('user', t('form.user'))}
          {area('env', t('form.env'))}
          {area('secret_env', t('form.secretEnv'))}
        </fieldset>

        <fieldset class="card">
          <legend>{t('form.sharding')}</legend>
          {input('shards', t('form.shards'), { type: 'number' })}
          {input('shard_params', t('form.shardParams'))}
          {input('job_param', t('form.jobParam'))}
          {select('strategy', t('form.strategy'), ['even', 'hash', 'local'])}
          {input('prefer', t('form.prefer'))}
          {check('prefer_only', t('form.preferOnly'))}
          {check('failover', t('form.failover'))}
        </fieldset>

        <fieldset class="card">
          <legend>{t('form.limits')}</legend>
          {input('timeout', t('form.timeout'), { type: 'number' })}
          {input('timeout_alarm', t('form.timeoutAlarm'), { type: 'number' })}
          {input('kill_grace', t('form.killGrace'), { type: 'number' })}
          {input('retries', t('form.retries'), { type: 'number' })}
          {input('retry_backoff', t('form.retryBackoff'), { type: 'number' })}
          {input('retry_backoff_max', t('form.retryBackoffMax'), { type: 'number' })}
          {input('retry_backoff_factor', t('form.retryBackoffFactor'))}
          {select('overlap', t('form.overlap'), ['skip', 'queue', 'parallel'])}
          {input('misfire_threshold', t('form.misfireThreshold'), { type: 'number' })}
          {select('misfire', t('form.misfire'), ['skip', 'run_once', 'catch_up'])}
          {input('catch_up_max', t('form.catchUpMax'), { type: 'number' })}
          {select('on_executor_death', t('form.onExecutorDeath'), ['kill', 'finish'])}
          {input('downstream', t('form.downstream'), { wide: true })}
        </fieldset>

        {error && (
          <p class="error" role="alert" id="form-error">
            {error.msg}
          </p>
        )}
        <div class="actions">
          <button type="submit" disabled={busy}>
            {t('common.save')}
          </button>
          <Link href={job ? jobHref(job.name) : '/jobs'} class="button secondary">
            {t('common.cancel')}
          </Link>
        </div>
      </form>
    </section>
  );
}

