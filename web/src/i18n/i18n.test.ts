import { describe, expect, it } from 'vitest';
import { en } from './en';
import { zh } from './zh';
import { interpolate, localeTag } from './index';

describe('the catalogues', () => {
  it('have the same keys and the same placeholders', () => {
    expect(Object.keys(zh).sort()).toEqual(Object.keys(en).sort());
    for (const k of Object.keys(en) as (keyof typeof en)[]) {
      const ph = (s: string) => (s.match(/\{\w+\}/g) ?? []).sort();
      expect(ph(zh[k]), k).toEqual(ph(en[k]));
      expect(zh[k].length, k).toBeGreaterThan(0);
    }
  });
  it('fills placeholders', () => {
    expect(interpolate('Page {n} of {m}', { n: 2, m: 3 })).toBe('Page 2 of 3');
    expect(interpolate('{x}', {})).toBe('{x}');
  });
  it('uses the viewer locale when it is of the chosen language', () => {
    expect(localeTag('en', 'en-GB')).toBe('en-GB');
    expect(localeTag('zh', 'en-GB')).toBe('zh-CN');
    expect(localeTag('zh', 'zh-TW')).toBe('zh-TW');
    expect(localeTag('en', 'zh-CN')).toBe('en-US');
  });
});
