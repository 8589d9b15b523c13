// A line diff for the job versions view: the longest common subsequence of two texts'
// lines, then the lines only the old text has (removed) and only the new one has (added),
// and the side-by-side rows of a two-column view.

export type DiffOp =
  | { op: 'same'; a: number; b: number; text: string }
  | { op: 'del'; a: number; text: string }
  | { op: 'add'; b: number; text: string };

/** The diff of two lists of lines, in order (a and b are 0-based line indexes). */
export function diffLines(a: string[], b: string[]): DiffOp[] {
  // common head and tail first: a job's definitions differ in a few lines
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const n = a.length - head - tail;
  const m = b.length - head - tail;
  // lcs[i][j]: the LCS length of a[head+i..] and b[head+j..] (middle parts only)
  const lcs: Uint32Array[] = [];
  for (let i = 0; i <= n; i++) lcs.push(new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      lcs[i][j] = a[head + i] === b[head + j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out: DiffOp[] = [];
  for (let k = 0; k < head; k++) out.push({ op: 'same', a: k, b: k, text: a[k] });
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[head + i] === b[head + j]) {
      out.push({ op: 'same', a: head + i, b: head + j, text: a[head + i] });
      i++;
      j++;
    } else if (j < m && (i === n || lcs[i][j + 1] > lcs[i + 1][j])) {
      out.push({ op: 'add', b: head + j, text: b[head + j] });
      j++;
    } else {
      out.push({ op: 'del', a: head + i, text: a[head + i] });
      i++;
    }
  }
  for (let k = 0; k < tail; k++) out.push({ op: 'same', a: head + n + k, b: head + m + k, text: a[head + n + k] });
  return out;
}

export interface Side {
  n: number; // 1-based line number
  text: string;
  kind: 'same' | 'del' | 'add';
}

/** Two-column rows: unchanged lines side by side, removed lines beside the added ones. */
export function sideBySide(ops: DiffOp[]): { left: Side | null; right: Side | null }[] {
  const rows: { left: Side | null; right: Side | null }[] = [];
  let k = 0;
  while (k < ops.length) {
    const o = ops[k];
    if (o.op === 'same') {
      rows.push({ left: { n: o.a + 1, text: o.text, kind: 'same' }, right: { n: o.b + 1, text: o.text, kind: 'same' } });
      k++;
      continue;
    }
    const dels: Side[] = [];
    const adds: Side[] = [];
    while (k < ops.length && ops[k].op !== 'same') {
      const x = ops[k];
      if (x.op === 'del') dels.push({ n: x.a + 1, text: x.text, kind: 'del' });
      else if (x.op === 'add') adds.push({ n: x.b + 1, text: x.text, kind: 'add' });
      k++;
    }
    for (let r = 0; r < Math.max(dels.length, adds.length); r++) rows.push({ left: dels[r] ?? null, right: adds[r] ?? null });
  }
  return rows;
}

/** Pretty-printed JSON lines of a definition, without the fields every version differs in. */
export function definitionLines(def: unknown, drop: string[] = ['version', 'state']): string[] {
  if (def && typeof def === 'object' && !Array.isArray(def)) {
    const copy: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(def as Record<string, unknown>)) if (!drop.includes(k)) copy[k] = v;
    def = copy;
  }
  return JSON.stringify(def, null, 2).split('\n');
}
