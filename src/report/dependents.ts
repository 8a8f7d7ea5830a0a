import type { Db } from '../db/open.js';
import { attrDrvs, drvEdges } from '../db/report-queries.js';

/** Which attributes need a source: as their own input (direct) and anywhere in their closure (total). */
export interface AttrNeeds {
  /** attributes whose derivation is the source itself or has it as a direct input */
  direct: string[];
  /** attributes that need it at all, direct ones included */
  total: number;
  /** attributes that need it only through other derivations, nearest first, at most INDIRECT_CAP */
  indirect: string[];
  indirectTruncated: boolean;
}

export const INDIRECT_CAP = 50;

/**
 * The reverse of the derivation graph in memory: strings interned to integers, edges in
 * compressed arrays, one breadth-first walk up from a source per question. Built once per
 * report; 40k derivations and a few hundred thousand edges load in well under a second.
 */
export function createDependents(db: Db, crawlId: number) {
  const ids = new Map<string, number>();
  const intern = (s: string): number => {
    let i = ids.get(s);
    if (i === undefined) {
      i = ids.size;
      ids.set(s, i);
    }
    return i;
  };
  const from: number[] = [];
  const to: number[] = [];
  for (const [drv, input] of drvEdges(db)) {
    to.push(intern(drv)); // `drv` depends on `input`: the reverse edge goes input -> drv
    from.push(intern(input));
  }
  // attribute paths interned too: a walk counts distinct attributes with a stamp array
  const attrIds = new Map<string, number>();
  const attrNames: string[] = [];
  const attrsOf = new Map<number, number[]>();
  for (const [path, drv] of attrDrvs(db, crawlId)) {
    const i = intern(drv);
    let a = attrIds.get(path);
    if (a === undefined) {
      a = attrNames.length;
      attrIds.set(path, a);
      attrNames.push(path);
    }
    const list = attrsOf.get(i);
    if (list) list.push(a);
    else attrsOf.set(i, [a]);
  }
  const n = ids.size;
  const start = new Int32Array(n + 1);
  for (const f of from) start[f + 1]++;
  for (let i = 0; i < n; i++) start[i + 1] += start[i];
  const edges = new Int32Array(from.length);
  const fill = start.slice(0, n);
  for (let k = 0; k < from.length; k++) edges[fill[from[k]]++] = to[k];
  const seen = new Int32Array(n);
  const attrSeen = new Int32Array(attrNames.length);
  const directMark = new Int32Array(attrNames.length);
  let epoch = 0;
  const queue = new Int32Array(n);

  return {
    needs(fodDrv: string): AttrNeeds {
      const root = ids.get(fodDrv);
      if (root === undefined) return { direct: [], total: 0, indirect: [], indirectTruncated: false };
      epoch++;
      const direct: string[] = [];
      const markDirect = (v: number) => {
        for (const a of attrsOf.get(v) ?? [])
          if (directMark[a] !== epoch) {
            directMark[a] = epoch;
            direct.push(attrNames[a]);
          }
      };
      markDirect(root);
      for (let k = start[root]; k < start[root + 1]; k++) markDirect(edges[k]);
      // breadth first, so the indirect sample lists the nearest users first
      const indirect: string[] = [];
      let total = 0,
        more = false;
      let head = 0,
        tail = 0;
      queue[tail++] = root;
      seen[root] = epoch;
      while (head < tail) {
        const v = queue[head++];
        const as = attrsOf.get(v);
        if (as) {
          for (const a of as) {
            if (attrSeen[a] === epoch) continue;
            attrSeen[a] = epoch;
            total++;
            if (directMark[a] !== epoch) {
              if (indirect.length < INDIRECT_CAP) indirect.push(attrNames[a]);
              else more = true;
            }
          }
        }
        for (let k = start[v]; k < start[v + 1]; k++) {
          const w = edges[k];
          if (seen[w] !== epoch) {
            seen[w] = epoch;
            queue[tail++] = w;
          }
        }
      }
      return { direct: direct.sort(), total, indirect, indirectTruncated: more };
    },
  };
}
