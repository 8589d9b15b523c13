// The REST API client (docs/api.md): every request of the console goes through request().
//
// Authentication is decided in one place, authHeaders(): today an API token kept in this
// tab's sessionStorage and sent as "Authorization: Bearer".  Password sign-in (a session
// cookie, with the X-CSRF-Token header on writes) belongs here too when the server offers
// it; no page knows how the console is signed in.
const TOKEN_KEY = 'tethys.token';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field: string | null,
  ) {
    super(message);
  }
}

type Listener = () => void;
const unauthorizedListeners: Listener[] = [];

/** Called when the server answers 401: the token was revoked or expired. */
export function onUnauthorized(fn: Listener): void {
  unauthorizedListeners.push(fn);
}

export function token(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function signedIn(): boolean {
  return token() !== null;
}

export function signOut(): void {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* nothing kept */
  }
}

function authHeaders(_method: string, bearer?: string): Record<string, string> {
  const tk = bearer ?? token();
  return tk ? { Authorization: `Bearer ${tk}` } : {};
}

export async function request<T>(
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  path: string,
  body?: unknown,
  opts: { bearer?: string; ifMatch?: number } = {},
): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...authHeaders(method, opts.bearer) };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (opts.ifMatch !== undefined) headers['If-Match'] = `"${opts.ifMatch}"`;
  const res = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body !== undefined ? JSON.stringify(body) : undefined,
    credentials: 'same-origin',
  });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const e = (data as { error?: { code?: string; message?: string; field?: string | null } } | null)?.error;
    const err = new ApiError(res.status, e?.code ?? 'http', e?.message ?? `HTTP ${res.status}`, e?.field ?? null);
    if (res.status === 401 && opts.bearer === undefined) unauthorizedListeners.forEach((f) => f());
    throw err;
  }
  return data as T;
}

/** Check a token with an authenticated read, and keep it for this tab when it works. */
export async function signIn(bearer: string): Promise<void> {
  await request('GET', '/jobs?limit=1', undefined, { bearer });
  sessionStorage.setItem(TOKEN_KEY, bearer);
}

export function qs(params: Record<string, string | number | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

// ---- the shapes the console reads (docs/api.md, docs/jobs.md) ----

export interface JobState {
  next_fire: string | null;
  running: number;
  waiting: number;
}

export interface Job {
  name: string;
  domain: string;
  level: number;
  description: string;
  owner: string;
  enabled: boolean;
  type: string;
  command: string;
  workdir: string | null;
  user: string | null;
  env: Record<string, string>;
  secret_env?: Record<string, string>;
  output_cap: number;
  schedule: string | null;
  time_zone: string;
  start_at: string | null;
  end_at: string | null;
  pause_windows: ({ dates: [string, string] } | { daily: [string, string] })[];
  calendars: { skip: string[]; only: string[] };
  shards: number;
  shard_params: Record<string, string>;
  job_param: string | null;
  strategy?: string;
  prefer?: string[];
  prefer_only?: boolean;
  timeout: number;
  timeout_alarm: number;
  kill_grace: number;
  retries: number;
  retry_backoff: number;
  retry_backoff_max: number;
  retry_backoff_factor: number;
  overlap: string;
  misfire_threshold: number;
  misfire: string;
  catch_up_max: number;
  on_executor_death: string;
  failover: boolean;
  downstream: string[];
  version?: number;
  state?: JobState;
}

export interface Page<T> {
  items: T[];
  next: string | null;
}

export interface StatsGroup {
  key: string;
  runs: number;
  succeeded: number;
  failed: number;
  timeouts: number;
  canceled: number;
  interrupted: number;
  lost: number;
  misfired: number;
  unfinished: number;
  skipped: number;
  duration_ms: { p50: number | null; p95: number | null };
  lateness_ms: { p50: number | null; p99: number | null };
}

export interface HistoryItem {
  kind: 'run' | 'skip';
  run_id?: string;
  job: string;
  domain?: string;
  shard: number;
  attempt?: number;
  trigger?: string;
  status?: string;
  reason?: string;
  detail?: string;
  scheduled_at: number;
  scheduled_at_text?: string;
  started_at_ms?: number | null;
  ended_at_ms?: number | null;
  executor?: string | null;
  exit_code?: number | null;
}

export interface Run extends HistoryItem {
  output?: string;
  error?: string | null;
}

export interface Executor {
  id: string;
  host?: string;
  kind?: string;
  state?: string;
  capacity?: number;
  running?: number;
  queued?: number;
  start_rate?: number;
  overloaded?: boolean;
  version?: string;
  started_at_ms?: number;
  started_ms?: number;
  labels?: Record<string, string>;
  last_heartbeat_ms?: number;
  spool?: { pending?: number };
  shards?: number;
}

export interface CronCheck {
  expression: string;
  valid: boolean;
  status: string;
  form?: string;
  normalized?: string;
  time_zone?: { name: string; abbreviation: string; utc_offset: string; utc_offset_seconds: number };
  from?: string;
  next?: string[];
  error?: { message: string; field?: string; position: number; length: number };
}

export interface Alerts {
  abnormal_jobs: { job: string; domain: string; domain_level: number; job_level: number; scheduled_at: string | number | null; reason: string; kind: string; since_ms: number }[];
  timed_out_shards: { job: string; domain: string; domain_level: number; job_level: number; seconds_over: number; shards: number[] }[];
  not_highly_available: { job: string; domain: string; domain_level: number; job_level: number; reason: string }[];
  abnormal_resources: { resource: string; domain: string; domain_level: number; reason: string; since_ms?: number }[];
  incomplete: string | null;
}
