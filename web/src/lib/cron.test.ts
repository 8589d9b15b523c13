import { describe, expect, it } from 'vitest';
import { caretLine, markOffsetChanges, offsetOf } from './cron';

describe('offsetOf', () => {
  it('reads the offset of an RFC 3339 text', () => {
    expect(offsetOf('2024-03-31T03:00:00+02:00')).toBe('+02:00');
    expect(offsetOf('2024-11-03T01:30:00-05:00')).toBe('-05:00');
    expect(offsetOf('2024-01-01T00:00:00Z')).toBe('+00:00');
    expect(offsetOf('2024-01-01T00:00:00')).toBeNull();
  });
});

describe('markOffsetChanges', () => {
  it('marks the first fire after a daylight-saving change (Europe/Berlin, March 2024)', () => {
    const next = ['2024-03-30T01:30:00+01:00', '2024-03-31T01:30:00+01:00', '2024-04-01T01:30:00+02:00', '2024-04-02T01:30:00+02:00'];
    const marked = markOffsetChanges(next, '+01:00');
    expect(marked.map((f) => f.change)).toEqual([null, null, { from: '+01:00', to: '+02:00' }, null]);
    expect(marked[2].ms).toBe(Date.parse('2024-03-31T23:30:00Z'));
  });
  it('compares the first fire with the offset at the start', () => {
    const marked = markOffsetChanges(['2024-11-04T12:00:00-05:00'], '-04:00');
    expect(marked[0].change).toEqual({ from: '-04:00', to: '-05:00' });
  });
  it('marks nothing in a zone without daylight saving, or without a start offset', () => {
    expect(markOffsetChanges(['2024-06-01T00:00:00+08:00', '2024-12-01T00:00:00+08:00'], '+08:00').every((f) => f.change === null)).toBe(true);
    expect(markOffsetChanges(['2024-06-01T00:00:00+02:00'], null)[0].change).toBeNull();
  });
  it('marks both changes of a year (America/New_York, monthly)', () => {
    const next = ['2024-02-01T12:00:00-05:00', '2024-03-01T12:00:00-05:00', '2024-04-01T12:00:00-04:00', '2024-10-01T12:00:00-04:00', '2024-12-01T12:00:00-05:00'];
    expect(markOffsetChanges(next, '-05:00').filter((f) => f.change).map((f) => f.text)).toEqual(['2024-04-01T12:00:00-04:00', '2024-12-01T12:00:00-05:00']);
  });
});

describe('caretLine', () => {
  it('puts carets under the bad field', () => {
    expect(caretLine('0 0 12 32 * ?', 7, 2)).toBe('       ^^');
    expect(caretLine('bad', 0, 3)).toBe('^^^');
  });
  it('shows at least one caret', () => {
    expect(caretLine('0 0', 3, 0)).toBe('   ^');
  });
  it('counts characters, not UTF-8 bytes, before the error', () => {
    // "é" is two bytes: the server's byte offset 3 is the third character
    expect(caretLine('é x', 3, 1)).toBe('  ^');
  });
});
