import { describe, expect, it } from 'vitest';
import { everyDay } from './stats';
import type { StatsGroup } from './api';

const g = (key: string, runs: number) => ({ key, runs }) as unknown as StatsGroup;

describe('everyDay', () => {
  it('has every UTC day of the period, days without runs as zeros', () => {
    const since = Date.parse('2026-03-01T10:00:00Z') / 1000;
    const now = Date.parse('2026-03-04T01:00:00Z');
    const days = everyDay([g('2026-03-02', 5)], since, now);
    expect(days.map((d) => [d.key, d.runs])).toEqual([
      ['2026-03-01', 0],
      ['2026-03-02', 5],
      ['2026-03-03', 0],
      ['2026-03-04', 0],
    ]);
    expect(days[0].duration_ms.p50).toBeNull();
  });
});
