/**
 * `--missing --mirror DIR|URL`: which FODs of a target a mirror lacks, with sizes where known
 * (what the mirror holds: its file's size; what it lacks: the size a fetch recorded on this
 * database, else unknown).
 */
import type { Fod } from '../graph/types.js';
import { createDirMirrorView, type MirrorView } from '../mirror/holdings.js';
import { createUrlMirrorView } from '../fetch/remote-mirror.js';
import { distinctOutputs } from './targets.js';

/** A mirror directory, or a served mirror (`http://`, `https://`). */
/** Whether `--mirror` names a served mirror (a URL) rather than a directory. */
export const isMirrorUrl = (where: string): boolean => /^https?:\/\//i.test(where);

export function mirrorViewOf(where: string): Promise<MirrorView> | MirrorView {
  return isMirrorUrl(where) ? createUrlMirrorView(where) : createDirMirrorView(where);
}

export interface MissingFod {
  fod: Fod;
  /** bytes, as a fetch recorded them; null: unknown */
  size: number | null;
}

export interface MissingAnswer {
  mirror: string;
  /** distinct outputs of the target */
  fods: number;
  have: number;
  /** bytes the mirror holds of the target (what it could measure) */
  haveBytes: number;
  lack: number;
  /** lacking outputs whose size is unknown */
  unknownSize: number;
  /** bytes of the lacking outputs whose size is known: what a bundle would move */
  bytesToMove: number;
  missing: MissingFod[];
}

/**
 * `recorded`: sizes by drvPath (db/queries.ts `recordedSizes`); any .drv of an output may have
 * one: the FOD's own, or any of `drvPaths` (a source of a target evaluated now, found through
 * several .drv files: one per system, or two fetchers of one file).
 */
export async function missingFrom(
  fods: readonly (Fod & { drvPaths?: readonly string[] })[],
  view: MirrorView,
  recorded: ReadonlyMap<string, number>,
): Promise<MissingAnswer> {
  const byOutput = new Map<string, number>();
  for (const f of fods) {
    for (const drv of [f.drvPath, ...(f.drvPaths ?? [])]) {
      const s = recorded.get(drv);
      if (s !== undefined && !byOutput.has(f.outPath)) byOutput.set(f.outPath, s);
    }
  }
  const recordedSize = (f: Fod) => byOutput.get(f.outPath) ?? null;
  const distinct = distinctOutputs(fods);
  const holdings = await Promise.all(distinct.map((f) => view.holds(f)));
  const answer: MissingAnswer = { mirror: view.where, fods: distinct.length, have: 0, haveBytes: 0, lack: 0, unknownSize: 0, bytesToMove: 0, missing: [] };
  distinct.forEach((fod, i) => {
    const h = holdings[i];
    if (h.held) {
      answer.have++;
      answer.haveBytes += h.size ?? 0;
      return;
    }
    const size = recordedSize(fod);
    answer.lack++;
    if (size === null) answer.unknownSize++;
    else answer.bytesToMove += size;
    answer.missing.push({ fod, size });
  });
  return answer;
}
