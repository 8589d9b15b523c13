import { describe, expect, it } from 'vitest';
import { definitionLines, diffLines, sideBySide } from './linediff';

const kinds = (a: string[], b: string[]) => diffLines(a, b).map((o) => `${o.op === 'same' ? ' ' : o.op === 'del' ? '-' : '+'}${o.text}`);

describe('diffLines', () => {
  it('says nothing changed for equal texts', () => {
    expect(kinds(['a', 'b'], ['a', 'b'])).toEqual([' a', ' b']);
    expect(kinds([], [])).toEqual([]);
  });
  it('marks a changed line as removed then added', () => {
    expect(kinds(['a', 'b', 'c'], ['a', 'x', 'c'])).toEqual([' a', '-b', '+x', ' c']);
  });
  it('finds insertions and deletions anywhere', () => {
    expect(kinds(['a', 'b', 'c'], ['x', 'a', 'c', 'y'])).toEqual(['+x', ' a', '-b', ' c', '+y']);
    expect(kinds([], ['a'])).toEqual(['+a']);
    expect(kinds(['a'], [])).toEqual(['-a']);
  });
  it('keeps the longest common subsequence', () => {
    const ops = diffLines('abcabba'.split(''), 'cbabac'.split(''));
    expect(ops.filter((o) => o.op === 'same').length).toBe(4);
    // applying the diff gives back both texts
    expect(ops.filter((o) => o.op !== 'add').map((o) => o.text).join('')).toBe('abcabba');
    expect(ops.filter((o) => o.op !== 'del').map((o) => o.text).join('')).toBe('cbabac');
  });
  it('numbers lines from the texts they come from', () => {
    const ops = diffLines(['a', 'b'], ['b', 'c']);
    expect(ops).toEqual([
      { op: 'del', a: 0, text: 'a' },
      { op: 'same', a: 1, b: 0, text: 'b' },
      { op: 'add', b: 1, text: 'c' },
    ]);
  });
});

describe('sideBySide', () => {
  it('puts removed lines beside the added ones', () => {
    const rows = sideBySide(diffLines(['a', 'b', 'c', 'd'], ['a', 'x', 'd', 'e']));
    expect(rows.map((r) => [r.left?.kind ?? null, r.left?.text ?? null, r.right?.kind ?? null, r.right?.text ?? null])).toEqual([
      ['same', 'a', 'same', 'a'],
      ['del', 'b', 'add', 'x'],
      ['del', 'c', null, null],
      ['same', 'd', 'same', 'd'],
      [null, null, 'add', 'e'],
    ]);
    expect(rows[1].left?.n).toBe(2);
    expect(rows[4].right?.n).toBe(4);
  });
});

describe('definitionLines', () => {
  it('pretty-prints without version and state', () => {
    expect(definitionLines({ name: 'x', version: 3, state: {}, shards: 1 })).toEqual(['{', '  "name": "x",', '  "shards": 1', '}']);
  });
});
