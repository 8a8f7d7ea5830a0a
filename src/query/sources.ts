import { FodderError, ErrorCode } from '../errors.js';
import type { Db } from '../db/open.js';
import type { Fod } from '../graph/types.js';
import { formatAttrPath, parseAttrPath } from '../eval/attr-path.js';
import { fodsInClosure, latestAttrHit, similarAttrPaths, type AttrHit } from '../db/queries.js';

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

/** The attribute's record from the latest finished crawl that covered it (or crawl `n.crawl`), preferring x86_64-linux, default. */
export function latestAttr(db: Db, attr: string, n: Narrowing): AttrHit & { path: string } {
  const path = formatAttrPath(parseAttrPath(attr));
  const find = (finishedOnly: boolean) => latestAttrHit(db, path, n, finishedOnly);
  const hit = find(n.crawl === undefined);
  if (!hit) {
    const where = [n.system && `system ${n.system}`, n.variant && `variant ${n.variant}`].filter(Boolean).join(', ');
    const unfinished = n.crawl === undefined ? find(false) : undefined;
    if (unfinished) {
      throw new FodderError(
        ErrorCode.ATTR_NOT_CRAWLED,
        `attribute "${path}" was crawled${where ? ` for ${where}` : ''} only by crawl ${unfinished.crawl_id}, which has not finished: ` +
          `pass --crawl ${unfinished.crawl_id} to read what it has recorded`,
        { attr: path, crawl: unfinished.crawl_id },
      );
    }
    const near = similarAttrPaths(db, path.split('.').pop()!);
    const hint = near.length ? `; similar: ${near.join(', ')}` : '';
    const by = n.crawl === undefined ? '' : ` by crawl ${n.crawl}`;
    throw new FodderError(ErrorCode.ATTR_NOT_CRAWLED, `attribute "${path}" was never crawled${by}${where ? ` for ${where}` : ''}${hint}`, { attr: path });
  }
  return { ...hit, path };
}

/** The FODs in the .drv closure of ATTR, from the latest finished crawl that covered it (or `n.crawl`). */
export function sourcesOf(db: Db, attr: string, n: Narrowing = {}): SourcesAnswer {
  return sourcesOfHit(db, latestAttr(db, attr, n));
}

/** The answer of `sourcesOf` for an attribute's record already found (`latestAttr`). */
export function sourcesOfHit(db: Db, hit: AttrHit & { path: string }): SourcesAnswer {
  const at = `"${hit.path}" (${hit.system}, ${hit.variant}, crawl ${hit.crawl_id})`;
  if (hit.status === 'error') {
    throw new FodderError(ErrorCode.ATTR_FAILED, `${at} failed to evaluate (${hit.error_kind}): ${hit.error ?? 'no message'}`, { attr: hit.path });
  }
  if (hit.status !== 'drv' || !hit.drv_path) {
    const what = hit.status === 'set' ? 'a package set, not a derivation' : `not a derivation (${hit.reason ?? hit.status})`;
    throw new FodderError(ErrorCode.ATTR_FAILED, `${at} is ${what}`, { attr: hit.path });
  }
  return { attr: hit.path, system: hit.system, variant: hit.variant, crawl: hit.crawl_id, drvPath: hit.drv_path, sources: fodsInClosure(db, hit.drv_path) };
}
