import { createHash } from 'node:crypto';
import { formatAttrPath } from './attr-path.js';
import type { AttrResult } from './types.js';
import type { AttrRow } from '../db/crawl-store.js';

/** Which sets the walk descends into. */
export interface WalkPolicy {
  exhaustive: boolean;
  maxDepth: number;
  excludeTop: Set<string>;
  excludeAnywhere: Set<string>;
}

/** Why a child name is not evaluated at all, or null when it is. */
export function exclusionOf(policy: WalkPolicy, parentDepth: number, name: string): string | null {
  if (name === 'recurseForDerivations') return 'marker';
  if (policy.excludeAnywhere.has(name)) return `excluded name "${name}"`;
  if (parentDepth === 0 && policy.excludeTop.has(name)) return `excluded top-level name "${name}"`;
  return null;
}

/**
 * Turns a walker result into rows: the attribute's own row, plus `skipped` rows for the
 * children of a set that policy refuses to evaluate (so the database says why).
 */
export function rowsOf(policy: WalkPolicy, r: AttrResult): AttrRow[] {
  const depth = r.path.length;
  const base: AttrRow = {
    path: formatAttrPath(r.path),
    pathJson: r.path,
    parent: depth === 0 ? null : formatAttrPath(r.path.slice(0, -1)),
    depth,
    status: r.status,
    drvPath: r.drvPath ?? null,
    errorKind: r.errorKind ?? null,
    error: r.error ?? null,
    reason: null,
    recurse: r.recurse ?? false,
    children: null,
    sig: null,
    aliasOf: null,
  };
  if (r.status === 'skipped') base.reason = `value is a ${r.type}`;
  if (r.status !== 'set') return [base];

  const out: AttrRow[] = [base];
  if (!r.recurse && !policy.exhaustive) {
    base.reason = 'no recurseForDerivations';
    return out;
  }
  if (depth >= policy.maxDepth) {
    base.reason = `depth limit ${policy.maxDepth}`;
    return out;
  }
  const children: string[] = [];
  for (const name of r.names ?? []) {
    const why = exclusionOf(policy, depth, name);
    if (why === 'marker') continue;
    if (why) {
      const path = [...r.path, name];
      out.push({
        path: formatAttrPath(path),
        pathJson: path,
        parent: base.path,
        depth: depth + 1,
        status: 'skipped',
        drvPath: null,
        errorKind: null,
        error: null,
        reason: why,
        recurse: false,
        children: null,
        sig: null,
        aliasOf: null,
      });
      continue;
    }
    children.push(name);
  }
  base.children = children;
  return out;
}

/**
 * Fingerprint of a set from its evaluated children: names, statuses and drvPaths. Two sets with
 * the same fingerprint and at least one derivation are the same value under two names.
 * Returns null when the set has no derivation child (nothing to tell it by).
 */
export function setSignature(children: AttrRow[]): string | null {
  if (!children.some((c) => c.status === 'drv')) return null;
  const h = createHash('sha256');
  for (const c of [...children].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    h.update(`${c.pathJson[c.pathJson.length - 1]}\0${c.status}\0${c.drvPath ?? ''}\n`);
  }
  return h.digest('hex');
}
