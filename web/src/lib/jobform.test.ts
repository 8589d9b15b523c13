import { describe, expect, it } from 'vitest';
import { emptyForm, FormError, formFromJob, jobFromForm } from './jobform';
import type { Job } from './api';

const job: Job = {
  name: 'nightly-import', domain: 'bank/settlement', level: 5, description: 'Import', owner: 'ops', enabled: true,
  type: 'shell', command: 'import.sh', workdir: '/srv', user: null, env: { DB_HOST: 'db1', B: 'x=y' },
  secret_env: { PW: '********' }, output_cap: 65536, schedule: '0 30 2 * * ?', time_zone: 'Asia/Shanghai',
  start_at: '2025-12-31T16:00:00Z', end_at: null,
  pause_windows: [{ dates: ['2026-12-24', '2026-12-26'] }, { daily: ['12:00', '13:30'] }],
  calendars: { skip: ['cn-holidays'], only: [] }, shards: 4, shard_params: { '0': 'beijing', '1': 'shanghai' },
  job_param: 'full', timeout: 3600, timeout_alarm: 1800, kill_grace: 10, retries: 2, retry_backoff: 10,
  retry_backoff_max: 3600, retry_backoff_factor: 2, overlap: 'skip', misfire_threshold: 5, misfire: 'skip',
  catch_up_max: 1, on_executor_death: 'kill', failover: false, downstream: ['report-daily'],
};

describe('the job form', () => {
  it('gives back the job it was filled from, every field', () => {
    const out = jobFromForm(formFromJob(job));
    expect(out).toMatchObject({
      name: 'nightly-import', domain: 'bank/settlement', level: 5, env: { DB_HOST: 'db1', B: 'x=y' },
      secret_env: { PW: '********' }, schedule: '0 30 2 * * ?', time_zone: 'Asia/Shanghai', start_at: '2025-12-31T16:00:00Z',
      end_at: null, pause_windows: job.pause_windows, calendars: job.calendars, shards: 4,
      shard_params: '0=beijing,1=shanghai', job_param: 'full', timeout: 3600, retry_backoff_factor: 2,
      downstream: ['report-daily'], user: null, workdir: '/srv', prefer: [], prefer_only: false, strategy: 'even',
    });
  });
  it('sends no schedule and defaults for an empty form', () => {
    const out = jobFromForm({ ...emptyForm('UTC'), name: 'x', command: 'true' });
    expect(out.schedule).toBeNull();
    expect(out.shard_params).toEqual({});
    expect(out.retry_backoff_max).toBeNull();
    expect(out.job_param).toBeNull();
  });
  it('passes text that is not a number on, so the server names the field', () => {
    expect(jobFromForm({ ...emptyForm(), shards: 'many' }).shards).toBe('many');
  });
  it('names the line of a bad environment or pause window', () => {
    expect(() => jobFromForm({ ...emptyForm(), env: 'A=1\nnoequals' })).toThrow(FormError);
    try {
      jobFromForm({ ...emptyForm(), pause_windows: 'daily 12:00 13:00\nweekly mon' });
    } catch (e) {
      expect(e).toBeInstanceOf(FormError);
      expect((e as FormError).field).toBe('pause_windows');
      expect((e as FormError).line).toBe(2);
    }
  });
});
