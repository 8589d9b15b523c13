// Dates, durations and numbers for people: Intl in the viewer's locale (i18n.localeTag),
// and in a job's own time zone where the job's clock is what matters.
import { localeTag } from '../i18n';

const cache = new Map<string, Intl.DateTimeFormat>();

function dtf(locale: string, zone: string | undefined, withZone: boolean): Intl.DateTimeFormat {
  const key = `${locale}|${zone ?? ''}|${withZone}`;
  let f = cache.get(key);
  if (!f) {
    const opts: Intl.DateTimeFormatOptions = {
      year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
      hour12: false, timeZone: zone,
    };
    if (withZone) opts.timeZoneName = 'short';
    try {
      f = new Intl.DateTimeFormat(locale, opts);
    } catch {
      f = new Intl.DateTimeFormat(locale, { ...opts, timeZone: undefined }); // a zone this browser lacks
    }
    cache.set(key, f);
  }
  return f;
}

/** An instant (ms since the epoch) in the viewer's locale and zone, or in `zone`. */
export function formatInstant(ms: number | null | undefined, zone?: string, locale = localeTag()): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms <= 0) return '—';
  return dtf(locale, zone, zone !== undefined).format(new Date(ms));
}

/** An RFC 3339 text as an instant in `zone` (the job's), or the text itself if unparsable. */
export function formatRfc3339(text: string | null | undefined, zone?: string, locale = localeTag()): string {
  if (!text) return '—';
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? text : formatInstant(ms, zone, locale);
}

/** The weekday of an instant in `zone`, short, in the locale. */
export function weekday(ms: number, zone: string, locale = localeTag()): string {
  try {
    return new Intl.DateTimeFormat(locale, { weekday: 'short', timeZone: zone }).format(new Date(ms));
  } catch {
    return '';
  }
}

/** Milliseconds as "850 ms", "12.3 s", "4 min 5 s", "2 h 3 min". */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  const neg = ms < 0;
  let v = Math.abs(ms);
  let out: string;
  if (v < 1000) out = `${Math.round(v)} ms`;
  else if (v < 60_000) out = `${(v / 1000).toFixed(v < 10_000 ? 2 : 1)} s`;
  else if (v < 3_600_000) {
    v = Math.round(v / 1000);
    out = `${Math.floor(v / 60)} min ${v % 60} s`;
  } else {
    v = Math.round(v / 60_000);
    out = `${Math.floor(v / 60)} h ${v % 60} min`;
  }
  return neg ? `-${out}` : out;
}

export function formatNumber(n: number | null | undefined, locale = localeTag()): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  return new Intl.NumberFormat(locale).format(n);
}

/** The time zones this browser knows, for the job form's suggestions. */
export function timeZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (k: string) => string[] };
  try {
    return intl.supportedValuesOf ? ['UTC', ...intl.supportedValuesOf('timeZone')] : ['UTC'];
  } catch {
    return ['UTC'];
  }
}
