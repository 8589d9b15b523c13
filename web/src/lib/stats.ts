// Statistics as the overview draws them.
import type { StatsGroup } from './api';

/** The groups of every UTC day from `since` to today, days without runs as zeros. */
export function everyDay(groups: StatsGroup[], since: number, now = Date.now()): StatsGroup[] {
  const byKey = new Map(groups.map((g) => [g.key, g]));
  const out: StatsGroup[] = [];
  for (let t = Math.floor(since / 86400) * 86400 * 1000; t <= now; t += 86400_000) {
    const key = new Date(t).toISOString().slice(0, 10);
    out.push(
      byKey.get(key) ?? {
        key, runs: 0, succeeded: 0, failed: 0, timeouts: 0, canceled: 0, interrupted: 0, lost: 0, misfired: 0,
        unfinished: 0, skipped: 0, duration_ms: { p50: null, p95: null }, lateness_ms: { p50: null, p99: null },
      },
    );
  }
  return out;
}
