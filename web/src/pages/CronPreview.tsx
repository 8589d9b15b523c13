// The live cron check: as the schedule or the zone is typed, POST /api/v1/cron/check
// (debounced) says whether the expression is valid (a caret under the error), its form,
// and the next 10 fire times in the job's zone, with changes of the UTC offset marked.
import { useEffect, useState } from 'preact/hooks';
import { t, type MessageKey } from '../i18n';
import { request, type CronCheck } from '../lib/api';
import { caretLine, markOffsetChanges } from '../lib/cron';
import { formatInstant, weekday } from '../lib/format';

const DEBOUNCE_MS = 250;

export function CronPreview(props: { expression: string; zone: string }) {
  const [check, setCheck] = useState<CronCheck | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const expr = props.expression.trim();
  const zone = props.zone.trim() || 'UTC';

  useEffect(() => {
    if (!expr) {
      setCheck(null);
      setError(null);
      return;
    }
    let live = true;
    setBusy(true);
    const timer = setTimeout(() => {
      request<CronCheck>('POST', '/cron/check', { expression: expr, time_zone: zone, count: 10 }).then(
        (c) => {
          if (!live) return;
          setCheck(c);
          setError(null);
          setBusy(false);
        },
        (e: Error) => {
          if (!live) return;
          setCheck(null);
          setError(e.message);
          setBusy(false);
        },
      );
    }, DEBOUNCE_MS);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [expr, zone]);

  if (!expr)
    return (
      <div class="cron-preview" id="cron-preview" aria-live="polite">
        <p class="hint">{t('cron.noSchedule')}</p>
      </div>
    );

  const formKey = check?.form ? (`cron.form.${check.form}` as MessageKey) : null;
  const times = check?.valid && check.next ? markOffsetChanges(check.next, check.from ? offsetOfFrom(check.from) : check.time_zone?.utc_offset ?? null) : [];

  return (
    <div class="cron-preview" id="cron-preview" aria-live="polite" aria-busy={busy}>
      {busy && <p class="hint">{t('cron.checking')}</p>}
      {error && (
        <p class="error" role="alert" data-cron="error">
          {error}
        </p>
      )}
      {check && !check.valid && check.error && (
        <div data-cron="invalid">
          <p>
            <span class="badge bad">{t('cron.invalid')}</span>
          </p>
          <pre class="caret" aria-label={check.error.message}>
            {check.expression}
            {'\n'}
            <span class="bad">{caretLine(check.expression, check.error.position, check.error.length)}</span>
          </pre>
          <p class="error" data-cron="message">
            {check.error.message}
          </p>
        </div>
      )}
      {check && check.valid && (
        <div data-cron="valid">
          <p>
            <span class="badge ok">{t('cron.valid')}</span>{' '}
            {formKey && (
              <span>
                {t('cron.form')}: {t(formKey)}
              </span>
            )}
          </p>
          <p class="sub">
            {t('cron.normalized')}: <code>{check.normalized}</code>
            {check.time_zone && (
              <>
                {' · '}
                {t('cron.zoneNow')}: {check.time_zone.name} ({check.time_zone.abbreviation}, UTC{check.time_zone.utc_offset})
              </>
            )}
          </p>
          {times.length === 0 ? (
            <p class="hint">{t('cron.never')}</p>
          ) : (
            <>
              <h3>{t('cron.next', { n: times.length, zone })}</h3>
              <ol class="fire-times" id="fire-times">
                {times.map((f) => (
                  <li key={f.text} class={f.change ? 'dst' : undefined}>
                    <time dateTime={f.text}>{formatInstant(f.ms, zone)}</time> <span class="sub">{weekday(f.ms, zone)}</span>{' '}
                    <code class="sub">{f.text}</code>
                    {f.change && (
                      <span class="badge warn" data-dst="1">
                        {t('cron.dst', { from: f.change.from, to: f.change.to })}
                      </span>
                    )}
                  </li>
                ))}
              </ol>
            </>
          )}
        </div>
      )}
    </div>
  );
}

function offsetOfFrom(from: string): string | null {
  const m = /([+-]\d\d:\d\d|Z)$/.exec(from);
  return m ? (m[1] === 'Z' ? '+00:00' : m[1]) : null;
}
