// The job form's model: every field of a job (docs/jobs.md) as the text a person edits,
// and back.  Pure, so it is unit-tested; the server still checks everything and names the
// field it refuses.
import type { Job } from './api';

export interface JobForm {
  name: string;
  domain: string;
  level: string;
  description: string;
  owner: string;
  enabled: boolean;
  type: string;
  command: string;
  workdir: string;
  user: string;
  env: string; // NAME=value lines
  secret_env: string; // NAME=value lines
  output_cap: string;
  schedule: string;
  time_zone: string;
  start_at: string;
  end_at: string;
  pause_windows: string; // "dates A B" / "daily A B" lines
  cal_skip: string; // comma-separated
  cal_only: string;
  shards: string;
  shard_params: string; // "0=a,1=b"
  job_param: string;
  strategy: string;
  prefer: string; // comma-separated
  prefer_only: boolean;
  timeout: string;
  timeout_alarm: string;
  kill_grace: string;
  retries: string;
  retry_backoff: string;
  retry_backoff_max: string;
  retry_backoff_factor: string;
  overlap: string;
  misfire_threshold: string;
  misfire: string;
  catch_up_max: string;
  on_executor_death: string;
  failover: boolean;
  downstream: string;
}

export function emptyForm(zone = 'UTC'): JobForm {
  return {
    name: '', domain: '', level: '5', description: '', owner: '', enabled: true, type: 'shell',
    command: '', workdir: '', user: '', env: '', secret_env: '', output_cap: '65536',
    schedule: '', time_zone: zone, start_at: '', end_at: '', pause_windows: '', cal_skip: '',
    cal_only: '', shards: '1', shard_params: '', job_param: '', strategy: 'even', prefer: '',
    prefer_only: false, timeout: '0', timeout_alarm: '0', kill_grace: '10', retries: '0',
    retry_backoff: '10', retry_backoff_max: '', retry_backoff_factor: '2', overlap: 'skip',
    misfire_threshold: '5', misfire: 'skip', catch_up_max: '1', on_executor_death: 'kill',
    failover: false, downstream: '',
  };
}

const lines = (o: Record<string, string> | undefined) =>
  Object.entries(o ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');

export function formFromJob(j: Job): JobForm {
  return {
    name: j.name,
    domain: j.domain ?? '',
    level: String(j.level ?? 5),
    description: j.description ?? '',
    owner: j.owner ?? '',
    enabled: j.enabled !== false,
    type: j.type ?? 'shell',
    command: j.command ?? '',
    workdir: j.workdir ?? '',
    user: j.user ?? '',
    env: lines(j.env),
    secret_env: lines(j.secret_env),
    output_cap: String(j.output_cap ?? 65536),
    schedule: j.schedule ?? '',
    time_zone: j.time_zone ?? 'UTC',
    start_at: j.start_at ?? '',
    end_at: j.end_at ?? '',
    pause_windows: (j.pause_windows ?? [])
      .map((w) => ('dates' in w ? `dates ${w.dates[0]} ${w.dates[1]}` : `daily ${w.daily[0]} ${w.daily[1]}`))
      .join('\n'),
    cal_skip: (j.calendars?.skip ?? []).join(', '),
    cal_only: (j.calendars?.only ?? []).join(', '),
    shards: String(j.shards ?? 1),
    shard_params: Object.entries(j.shard_params ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
    job_param: j.job_param ?? '',
    strategy: j.strategy ?? 'even',
    prefer: (j.prefer ?? []).join(', '),
    prefer_only: j.prefer_only === true,
    timeout: String(j.timeout ?? 0),
    timeout_alarm: String(j.timeout_alarm ?? 0),
    kill_grace: String(j.kill_grace ?? 10),
    retries: String(j.retries ?? 0),
    retry_backoff: String(j.retry_backoff ?? 10),
    retry_backoff_max: j.retry_backoff_max !== undefined ? String(j.retry_backoff_max) : '',
    retry_backoff_factor: String(j.retry_backoff_factor ?? 2),
    overlap: j.overlap ?? 'skip',
    misfire_threshold: String(j.misfire_threshold ?? 5),
    misfire: j.misfire ?? 'skip',
    catch_up_max: String(j.catch_up_max ?? 1),
    on_executor_death: j.on_executor_death ?? 'kill',
    failover: j.failover === true,
    downstream: (j.downstream ?? []).join(', '),
  };
}

/** A field the form could not turn into JSON: which, and which line. */
export class FormError extends Error {
  constructor(
    readonly field: keyof JobForm,
    readonly line: number,
    readonly expected: string,
  ) {
    super(`${field}, line ${line}: expected ${expected}`);
  }
}

function pairs(text: string, field: keyof JobForm): Record<string, string> {
  const out: Record<string, string> = {};
  text.split('\n').forEach((raw, i) => {
    const l = raw.trim();
    if (!l) return;
    const eq = l.indexOf('=');
    if (eq <= 0) throw new FormError(field, i + 1, 'NAME=value');
    out[l.slice(0, eq).trim()] = l.slice(eq + 1);
  });
  return out;
}

const list = (text: string) =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** A whole number, or the text itself (the server then names the field and the value). */
function int(text: string): number | string {
  const s = text.trim();
  return /^-?\d+$/.test(s) ? Number(s) : s;
}

function num(text: string): number | string {
  const s = text.trim();
  return s !== '' && Number.isFinite(Number(s)) ? Number(s) : s;
}

/** The job JSON for POST/PUT: every field given (the server fills nothing in silently). */
export function jobFromForm(f: JobForm): Record<string, unknown> {
  const windows = f.pause_windows
    .split('\n')
    .map((l, i) => [l.trim().split(/\s+/), i + 1] as const)
    .filter(([w]) => w[0] !== '')
    .map(([w, n]) => {
      if (w.length !== 3 || (w[0] !== 'dates' && w[0] !== 'daily'))
        throw new FormError('pause_windows', n, '"dates FIRST LAST" or "daily FROM TO"');
      return w[0] === 'dates' ? { dates: [w[1], w[2]] } : { daily: [w[1], w[2]] };
    });
  const job: Record<string, unknown> = {
    name: f.name.trim(),
    domain: f.domain.trim(),
    level: int(f.level),
    description: f.description,
    owner: f.owner,
    enabled: f.enabled,
    type: f.type,
    command: f.command,
    workdir: f.workdir.trim() || null,
    user: f.user.trim() || null,
    env: pairs(f.env, 'env'),
    secret_env: pairs(f.secret_env, 'secret_env'),
    output_cap: int(f.output_cap),
    schedule: f.schedule.trim() || null,
    time_zone: f.time_zone.trim() || 'UTC',
    start_at: f.start_at.trim() || null,
    end_at: f.end_at.trim() || null,
    pause_windows: windows,
    calendars: { skip: list(f.cal_skip), only: list(f.cal_only) },
    shards: int(f.shards),
    shard_params: f.shard_params.trim() || {},
    job_param: f.job_param === '' ? null : f.job_param,
    strategy: f.strategy,
    prefer: list(f.prefer),
    prefer_only: f.prefer_only,
    timeout: int(f.timeout),
    timeout_alarm: int(f.timeout_alarm),
    kill_grace: int(f.kill_grace),
    retries: int(f.retries),
    retry_backoff: int(f.retry_backoff),
    retry_backoff_max: f.retry_backoff_max.trim() === '' ? null : int(f.retry_backoff_max),
    retry_backoff_factor: num(f.retry_backoff_factor),
    overlap: f.overlap,
    misfire_threshold: int(f.misfire_threshold),
    misfire: f.misfire,
    catch_up_max: int(f.catch_up_max),
    on_executor_death: f.on_executor_death,
    failover: f.failover,
    downstream: list(f.downstream),
  };
  return job;
}
