import { describe, expect, it } from 'vitest';
import { formatDuration, formatInstant, formatRfc3339 } from './format';

describe('formatDuration', () => {
  it('picks a unit people read', () => {
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(1234)).toBe('1.23 s');
    expect(formatDuration(12_345)).toBe('12.3 s');
    expect(formatDuration(245_000)).toBe('4 min 5 s');
    expect(formatDuration(7_380_000)).toBe('2 h 3 min');
    expect(formatDuration(-1500)).toBe('-1.50 s');
    expect(formatDuration(null)).toBe('—');
  });
});

describe('formatInstant', () => {
  const ms = Date.parse('2024-03-31T01:30:00Z');
  it('formats in the given zone and locale', () => {
    expect(formatInstant(ms, 'Asia/Shanghai', 'en-US')).toMatch(/03\/31\/2024,? 09:30:00 GMT\+8/);
    expect(formatInstant(ms, 'Europe/Berlin', 'en-GB')).toMatch(/31\/03\/2024,? 03:30:00 CEST/);
    expect(formatInstant(ms, 'Asia/Shanghai', 'zh-CN')).toMatch(/2024\/03\/31.*09:30:00/);
  });
  it('shows a dash for no instant', () => {
    expect(formatInstant(null)).toBe('—');
    expect(formatInstant(0)).toBe('—');
  });
  it('reads RFC 3339 text and keeps text it cannot read', () => {
    expect(formatRfc3339('2024-03-31T03:30:00+02:00', 'UTC', 'en-GB')).toMatch(/31\/03\/2024,? 01:30:00 UTC/);
    expect(formatRfc3339('soon', 'UTC')).toBe('soon');
  });
});
