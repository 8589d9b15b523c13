// The live cron check's pure part: where the caret goes under an invalid expression, and
// which of the next fire times come after a change of the zone's UTC offset (daylight
// saving), read from the offsets the server writes in each time (RFC 3339, job's zone).

/** The UTC offset of an RFC 3339 text ("+08:00", "Z" as "+00:00"), or null. */
export function offsetOf(text: string): string | null {
  const m = /([+-]\d\d:\d\d|Z)$/.exec(text.trim());
  if (!m) return null;
  return m[1] === 'Z' ? '+00:00' : m[1];
}

export interface FireTime {
  text: string; // as the server wrote it, in the job's zone
  ms: number; // the instant
  offset: string | null; // its UTC offset
  change: { from: string; to: string } | null; // the offset differs from the time before
}

/**
 * Mark the fire times after which the zone's offset changed.  `fromOffset` is the offset
 * in force at the check's start (the first time is compared with it), or null to compare
 * the first time with nothing.
 */
export function markOffsetChanges(next: string[], fromOffset: string | null): FireTime[] {
  let prev = fromOffset;
  return next.map((text) => {
    const offset = offsetOf(text);
    const change = prev !== null && offset !== null && offset !== prev ? { from: prev, to: offset } : null;
    if (offset !== null) prev = offset;
    return { text, ms: Date.parse(text), offset, change };
  });
}

/**
 * The caret line under an expression: spaces up to `position` (a byte offset in the
 * server's UTF-8), then `length` carets (at least one).  Counted in code points, as the
 * expression is shown.
 */
export function caretLine(expression: string, position: number, length: number): string {
  const bytes = new TextEncoder();
  let col = 0;
  let seen = 0;
  for (const ch of expression) {
    if (seen >= position) break;
    seen += bytes.encode(ch).length;
    col++;
  }
  return ' '.repeat(col) + '^'.repeat(Math.max(1, length));
}
