import { FodderError, ErrorCode } from '../errors.js';
import type { Db } from '../db/open.js';
import type { Fod } from '../graph/types.js';
import { formatAttrPath, parseAttrPath } from '../eval/attr-path.js';
import { FOD_COLUMNS, fodFromRow, type FodRow } from './fod-row.js';

export interface SourcesAnswer {
  attr: string;
  system: string;
  variant: string;
  crawl: number;
  drvPath: string;
  sources: Fod[];
}

export interface Narrowing {
  system?: string;
  variant?: string;
  /** answer from this crawl, whatever its status; default: the latest finished crawl that covered it */
  crawl?: number;
}

interface AttrHit {
  crawl_id: number; system: string; variant: string; status: string; drv_path: string | null;
  error: string | null; error_kind: string | null; reason: string | null; alias_of: string | null;
}

/** The attribute's record from the latest finished crawl that covered it (or crawl `n.crawl`), preferring x86_64-linux, default. */
export function latestAttr(db: Db, attr: string, n: Narrowing): AttrHit & { path: string } {
  const path = formatAttrPath(parseAttrPath(attr));
  const find = (finishedOnly: boolean) => db.prepare(`
    SELECT crawl_id, system, variant, status, drv_path, error, error_kind, reason, alias_of FROM attrs
    WHERE path = @path AND (@system IS NULL OR system = @system) AND (@variant IS NULL OR variant = @variant)
      AND (@crawl IS NULL OR crawl_id = @crawl)
      AND (@finished = 0 OR crawl_id IN (SELECT id FROM crawls WHERE status = 'done'))
    ORDER BY crawl_id DESC, system = 'x86_64-linux' DESC, variant = 'default' DESC, system, variant
    LIMIT 1`).get({ path, system: n.system ?? null, variant: n.variant ?? null, crawl: n.crawl ?? null, finished: finishedOnly ? 1 : 0 }) as AttrHit | undefined;
  const hit = find(n.crawl === undefined);
  if (!hit) {
    const where = [n.system && `system ${n.system}`, n.variant && `variant ${n.variant}`].filter(Boolean).join(', ');
    const unfinished = n.crawl === undefined ? find(false) : undefined;
    if (unfinished) {
      throw new FodderError(ErrorCode.ATTR_NOT_CRAWLED,
        `attribute "${path}" was crawled${where ? ` for ${where}` : ''} only by crawl ${unfinished.crawl_id}, which has not finished: `
        + `pass --crawl ${unfinished.crawl_id} to read what it has recorded`, { attr: path, crawl: unfinished.crawl_id });
    }
    const near = db.prepare(`SELECT DISTINCT path FROM attrs WHERE path LIKE ? ORDER BY length(path) LIMIT 5`)
      .all(`%${path.split('.').pop()}%`) as { path: string }[];
    const hint = near.length ? `; similar: ${near.map((r) => r.path).join(', ')}` : '';
    const by = n.crawl === undefined ? '' : ` by crawl ${n.crawl}`;
    throw new FodderError(ErrorCode.ATTR_NOT_CRAWLED,
      `attribute "${path}" was never crawled${by}${where ? ` for ${where}` : ''}${hint}`, { attr: path });
  }
  return { ...hit, path };
}

/** The FODs in the .drv closure of ATTR, from the latest finished crawl that covered it (or `n.crawl`). */
export function sourcesOf(db: Db, attr: string, n: Narrowing = {}): SourcesAnswer {
  const hit = latestAttr(db, attr, n);
  const at = `"${hit.path}" (${hit.system}, ${hit.variant}, crawl ${hit.crawl_id})`;
  if (hit.status === 'error') {
    throw new FodderError(ErrorCode.ATTR_FAILED, `${at} failed to evaluate (${hit.error_kind}): ${hit.error ?? 'no message'}`, { attr: hit.path });
  }
  if (hit.status !== 'drv' || !hit.drv_path) {
    const what = hit.status === 'set' ? 'a package set, not a derivation' : `not a derivation (${hit.reason ?? hit.status})`;
    throw new FodderError(ErrorCode.ATTR_FAILED, `${at} is ${what}`, { attr: hit.path });
  }
  const rows = db.prepare(`
    WITH RECURSIVE c(p) AS (
      SELECT ? UNION SELECT i.input_drv FROM drv_inputs i JOIN c ON i.drv_path = c.p)
    SELECT ${FOD_COLUMNS} FROM c JOIN fods f ON f.drv_path = c.p ORDER BY f.name, f.drv_path`).all(hit.drv_path) as FodRow[];
  return {
    attr: hit.path, system: hit.system, variant: hit.variant, crawl: hit.crawl_id, drvPath: hit.drv_path,
    sources: rows.map(fodFromRow),
  };
}
