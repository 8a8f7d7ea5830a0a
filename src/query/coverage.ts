/**
 * What the dashboard draws (docs/api.md): how much of a crawl's sources the mirror holds, per
 * system, variant and kind, and where each finished crawl's sources stand, crawl after crawl.
 * Statuses are those of `fodder fods --status` (`fodStatuses`): where a source stands now.
 */
import type { Db } from '../db/open.js';
import { chooseCrawl, crawlById, finishedCrawlIds, type CrawlInfo } from '../db/crawls.js';
import { seenFods } from '../db/queries.js';
import { FOD_KINDS, type FodKind } from '../graph/types.js';
import { FOD_STATUSES, fodStatuses, type FodStatus } from './listings.js';

export type StatusCounts = Record<FodStatus, number>;

export interface KindCoverage {
  kind: FodKind;
  total: number;
  mirrored: number;
  statuses: StatusCounts;
}

export interface TargetCoverage {
  system: string;
  variant: string;
  total: number;
  mirrored: number;
  /** the kinds this target has sources of, in FOD_KINDS order */
  kinds: KindCoverage[];
}

export interface Coverage {
  crawl: CrawlInfo;
  targets: TargetCoverage[];
}

export interface HistoryPoint {
  crawl: CrawlInfo;
  /** seconds from the crawl's start to its finish */
  seconds: number | null;
  total: number;
  statuses: StatusCounts;
}

const noCounts = (): StatusCounts => Object.fromEntries(FOD_STATUSES.map((s) => [s, 0])) as StatusCounts;

/** Coverage of one crawl (default: the latest finished one) per system × variant and kind. */
export function coverageOf(db: Db, crawlId?: number): Coverage {
  const crawl = chooseCrawl(db, crawlId);
  const statusOf = fodStatuses(db);
  const all = seenFods(db, [crawl.id]);
  const systems = [...new Set(all.flatMap((f) => f.systems))].sort();
  const variants = [...new Set(all.flatMap((f) => f.variants))].sort();
  const targets: TargetCoverage[] = [];
  for (const system of systems) {
    for (const variant of variants) {
      const byKind = new Map<FodKind, KindCoverage>();
      for (const f of seenFods(db, [crawl.id], { system, variant })) {
        let k = byKind.get(f.kind);
        if (!k) byKind.set(f.kind, (k = { kind: f.kind, total: 0, mirrored: 0, statuses: noCounts() }));
        const status = statusOf(f.drvPath);
        k.total++;
        k.statuses[status]++;
        if (status === 'mirrored') k.mirrored++;
      }
      const kinds = FOD_KINDS.flatMap((kind) => byKind.get(kind) ?? []);
      targets.push({ system, variant, kinds, total: kinds.reduce((n, k) => n + k.total, 0), mirrored: kinds.reduce((n, k) => n + k.mirrored, 0) });
    }
  }
  return { crawl, targets };
}

/** The last `limit` finished crawls, oldest first, each with its sources counted by status. */
export function crawlHistory(db: Db, limit = 50): HistoryPoint[] {
  const statusOf = fodStatuses(db);
  return finishedCrawlIds(db)
    .slice(-limit)
    .flatMap((id) => {
      const crawl = crawlById(db, id);
      if (!crawl) return [];
      const statuses = noCounts();
      const fods = seenFods(db, [id]);
      for (const f of fods) statuses[statusOf(f.drvPath)]++;
      const seconds = crawl.finishedAt ? (Date.parse(crawl.finishedAt) - Date.parse(crawl.startedAt)) / 1000 : null;
      return [{ crawl, seconds, total: fods.length, statuses }];
    });
}
