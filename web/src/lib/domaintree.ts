// The domain tree of the Domains page, built from the flat list GET /api/v1/domains
// gives: a domain's parent is its path without the last part.  A parent that was never
// created (a job may name a domain nobody made, docs/jobs.md#domain) is shown as a node
// without a definition, so every domain has its place in the tree.

export interface Domain {
  path: string;
  level: number;
  description: string;
  limits: { max_jobs?: number; min_interval?: number; max_shards?: number };
  version?: number;
}

export interface DomainNode {
  path: string;
  name: string; // the last part of the path
  depth: number; // 0 for a top-level domain
  domain: Domain | null; // null: only a parent of created domains
  children: DomainNode[];
}

/** The parent of a domain path ("" for a top-level one). */
export function parentPath(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

/** The tree of the given domains, sorted by name at every level; the root "" is left out. */
export function buildTree(domains: Domain[]): DomainNode[] {
  const nodes = new Map<string, DomainNode>();
  const node = (path: string): DomainNode => {
    let n = nodes.get(path);
    if (!n) {
      const parts = path.split('/');
      n = { path, name: parts[parts.length - 1], depth: parts.length - 1, domain: null, children: [] };
      nodes.set(path, n);
      if (parts.length > 1) node(parentPath(path)).children.push(n);
    }
    return n;
  };
  for (const d of domains) if (d.path !== '') node(d.path).domain = d;
  const sort = (list: DomainNode[]) => {
    list.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    list.forEach((c) => sort(c.children));
    return list;
  };
  return sort([...nodes.values()].filter((n) => n.depth === 0));
}

/** The nodes in display order (depth first), for a flat list or table. */
export function flatten(tree: DomainNode[]): DomainNode[] {
  const out: DomainNode[] = [];
  const walk = (list: DomainNode[]) => list.forEach((n) => (out.push(n), walk(n.children)));
  walk(tree);
  return out;
}
