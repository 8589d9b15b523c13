// The REST API client (docs/api.md): every request of the console goes through request().
//
// Authentication is decided here and nowhere else; no page knows how the console is signed
// in.  Two ways (docs/console.md#signing-in):
//  - a user's session (the primary one): POST /api/v1/session sets the HttpOnly cookie
//    tethys_session, which the browser sends by itself (credentials: same-origin); the
//    answer's csrf token is kept in this tab's sessionStorage and sent as X-CSRF-Token on
//    every change (POST, PUT, PATCH, DELETE).  On load, GET /api/v1/session says whether a
//    session exists (and gives the csrf token back to a reloaded page);
//  - an API token kept in this tab's sessionStorage and sent as "Authorization: Bearer"
//    (the server prefers a bearer token when both come).
// A 401 on any request sends the console back to the sign-in page (onUnauthorized).
const TOKEN_KEY = 'tethys.token';
const CSRF_KEY = 'tethys.csrf';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field: string | null,
    /** Retry-After in seconds (429: a locked name, or the rate limit), else null. */
    readonly retryAfter: number | null = null,
  ) {
    super(message);
  }
}

/** Who is signed in: the answer of POST/GET /api/v1/session (docs/api.md#users-and-sessions). */
export interface Session {
  kind: 'user' | 'token';
  name: string;
  grants: { domain: string; role: string }[];
  must_change_password: boolean;
  all: boolean;
  expires_at?: string;
  expires_at_ms?: number;
  idle_expires_at?: string;
  idle_timeout_s?: number;
  csrf?: string;
}

type Listener = () => void;
const unauthorizedListeners: Listener[] = [];
let current: Session | null = null;

/** Called when the server answers 401: the token was revoked or expired, or the session ended. */
export function onUnauthorized(fn: Listener): void {
  unauthorizedListeners.push(fn);
}

function stored(key: string): string | null {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

function store(key: string, value: string | null): void {
  try {
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, value);
  } catch {
    /* nothing kept */
  }
}

export function token(): string | null {
  return stored(TOKEN_KEY);
}

/** The signed-in user or token, once signIn*, changePassword or loadSession said so. */
export function session(): Session | null {
  return current;
}

/** Signed in and free to use the console (a user who must change the password is not). */
export function signedIn(): boolean {
  return current !== null && !current.must_change_password;
}

function remember(s: Session): Session {
  current = s;
  if (s.kind === 'user' && s.csrf) store(CSRF_KEY, s.csrf);
  return s;
}

/** Forget this tab's sign-in (token, csrf token, who) without asking the server. */
export function forget(): void {
  current = null;
  store(TOKEN_KEY, null);
  store(CSRF_KEY, null);
}

/** Sign out: a user's session is ended on the server (DELETE /session); a token is forgotten. */
export async function signOut(): Promise<void> {
  const cookie = current?.kind === 'user' && token() === null;
  try {
    if (cookie) await request('DELETE', '/session', undefined, { quiet401: true });
  } catch {
    /* ended already, or the server is away: the tab forgets it anyway */
  } finally {
    forget();
  }
}

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function authHeaders(method: string, bearer?: string): Record<string, string> {
  const tk = bearer ?? token();
  if (tk) return { Authorization: `Bearer ${tk}` };
  const csrf = stored(CSRF_KEY);
  return csrf && WRITES.has(method) ? { 'X-CSRF-Token': csrf } : {};
}

export async function request<T>(
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  path: string,
  body?: unknown,
  opts: { bearer?: string; ifMatch?: number; quiet401?: boolean } = {},
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
    const ra = Number(res.headers.get('Retry-After'));
    const err = new ApiError(res.status, e?.code ?? 'http', e?.message ?? `HTTP ${res.status}`, e?.field ?? null, res.headers.has('Retry-After') && Number.isFinite(ra) ? ra : null);
    if (res.status === 401 && opts.bearer === undefined && !opts.quiet401) unauthorizedListeners.forEach((f) => f());
    throw err;
  }
  return data as T;
}

/**
 * On load: is this tab signed in?  GET /session with the kept token, else with the cookie
 * (if any).  Null when neither is accepted (a kept token that is refused is forgotten).
 */
export async function loadSession(): Promise<Session | null> {
  try {
    return remember(await request<Session>('GET', '/session', undefined, { quiet401: true }));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      forget();
      return null;
    }
    throw err;
  }
}

/** Sign in with a user name and password: the server sets the session cookie. */
export async function signInPassword(user: string, password: string): Promise<Session> {
  forget(); // a kept token would win over the new cookie
  return remember(await request<Session>('POST', '/session', { user, password }, { quiet401: true }));
}

/** Change the signed-in user's password (also the one it must change before anything else). */
export async function changePassword(oldPassword: string, newPassword: string): Promise<Session> {
  return remember(await request<Session>('POST', '/session/password', { old: oldPassword, new: newPassword }, { quiet401: true }));
}

/** Check a token with GET /session, and keep it for this tab when it works. */
export async function signIn(bearer: string): Promise<Session> {
  const s = await request<Session>('GET', '/session', undefined, { bearer });
  store(CSRF_KEY, null);
  store(TOKEN_KEY, bearer);
  return remember(s);
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
