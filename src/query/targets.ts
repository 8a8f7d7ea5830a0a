/**
 * A target: the FODs a command works on, resolved in this one place from the options every
 * target-taking command shares (`fodder sources`' ATTR with --system/--variant/--crawl, or all
 * FODs of the finished crawls / of `--crawl N`, narrowed like `fodder fods`). `--missing`,
 * `bundle create` and anything else that needs "the FODs of a target" ask `targetFods`; a new
 * kind of target (an expression, a flake, ...) is one more branch here returning a `Fod[]`.
 */
import { ErrorCode, FodderError } from '../errors.js';
import type { Db } from '../db/open.js';
import type { Fod } from '../graph/types.js';
import { chooseCrawl, finishedCrawlIds } from '../db/crawls.js';
import { sourcesOf } from './sources.js';
import { listFods } from './listings.js';

export interface TargetSpec {
  /** an attribute path: the FODs of its closure (`fodder sources ATTR`) */
  attr?: string;
  system?: string;
  variant?: string;
  /** a crawl, whatever its status; default: the latest finished (ATTR) or every finished crawl */
  crawl?: number;
  /** without ATTR: only FODs of this kind / status (as `fodder fods`) */
  kind?: string;
  status?: string;
}

export interface Target {
  /** says what the target is, for a header line */
  label: string;
  fods: Fod[];
}

export function targetFods(db: Db, spec: TargetSpec): Target {
  if (spec.attr !== undefined) {
    const a = sourcesOf(db, spec.attr, spec);
    return { label: `${a.attr} (${a.system}, ${a.variant}; crawl ${a.crawl})`, fods: a.sources };
  }
  let crawls: number[];
  if (spec.crawl !== undefined) {
    crawls = [chooseCrawl(db, spec.crawl).id];
  } else {
    crawls = finishedCrawlIds(db);
    if (crawls.length === 0) chooseCrawl(db); // says why there is nothing to read
  }
  if (crawls.length === 0) throw new FodderError(ErrorCode.DB_EMPTY, 'no crawl to read');
  const narrowed = [spec.system && `system ${spec.system}`, spec.variant && `variant ${spec.variant}`, spec.kind && `kind ${spec.kind}`].filter(Boolean);
  const label = `the FODs of crawl${crawls.length > 1 ? 's' : ''} ${crawls.join(', ')}${narrowed.length ? ` (${narrowed.join(', ')})` : ''}`;
  return { label, fods: listFods(db, crawls, spec) };
}

/** One FOD per output path (several .drv files can share one), in the order given. */
export function distinctOutputs<T extends Fod>(fods: readonly T[]): T[] {
  const seen = new Set<string>();
  return fods.filter((f) => !seen.has(f.outPath) && (seen.add(f.outPath), true));
}
