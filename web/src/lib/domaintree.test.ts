import { describe, expect, it } from 'vitest';
import { buildTree, flatten, parentPath, type Domain } from './domaintree';

const d = (path: string, level = 5): Domain => ({ path, level, description: '', limits: {} });

describe('domain tree', () => {
  it('finds parents', () => {
    expect(parentPath('bank')).toBe('');
    expect(parentPath('bank/settlement/eu')).toBe('bank/settlement');
  });
  it('nests paths and sorts them, whatever the order of the list', () => {
    const tree = buildTree([d('bank/settlement/eu'), d('reports'), d('bank'), d('bank/settlement'), d('bank/audit')]);
    expect(flatten(tree).map((n) => `${'  '.repeat(n.depth)}${n.name}`)).toEqual(['bank', '  audit', '  settlement', '    eu', 'reports']);
  });
  it('shows a parent nobody created, without a definition', () => {
    const flat = flatten(buildTree([d('ops/backup', 3)]));
    expect(flat.map((n) => [n.path, n.domain?.level ?? null])).toEqual([
      ['ops', null],
      ['ops/backup', 3],
    ]);
  });
  it('leaves the root out', () => {
    expect(buildTree([d(''), d('a')]).map((n) => n.path)).toEqual(['a']);
  });
});
