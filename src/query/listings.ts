import { FodderError, ErrorCode } from '../errors.js';
import type { Db } from '../db/open.js';
import { FOD_KINDS, isFodKind, type Fod, type FodKind } from '../graph/types.js';
import { attrRecords, fodsWithTexts, latestCrawlId, seenFods, type AttrRecord, type SeenFod } from '../db/queries.js';
import { ensureFetchSchema } from '../db/fetch-schema.js';
import { latestResults, mirroredDrvPaths } from '../db/report-queries.js';

/**
 * Where a source stands: `mirrored` (the mirror holds it), else the latest fetch verdict on it
 * (`dead`, `broken-hash`, `unverifiable`), else `unfetched`. The report's counts, one FOD at a time.
 */
export const FOD_STATUSES = ['mirrored', 'dead', 'broken-hash', 'unverifiable', 'unfetched'] as const;
export type FodStatus = (typeof FOD_STATUSES)[number];

/** The status of every FOD, as the database has it now (read once). */
export function fodStatuses(db: Db): (drvPath: string) => FodStatus {
  ensureFetchSchema(db);
  const mirrored = mirroredDrvPaths(db);
  const latest = latestResults(db);
  return (drv) => {
    if (mirrored.has(drv)) return 'mirrored';
    const v = latest.get(drv)?.verdict;
    return v === 'dead' || v === 'broken-hash' || v === 'unverifiable' ? v : 'unfetched';
  };
}

export interface FodFilter {
  system?: string;
  variant?: string;
  kind?: string;
  status?: string;
}

/** Validates a --kind value against the known kinds. */
export function checkKind(kind: string | undefined): FodKind | undefined {
  if (kind === undefined) return undefined;
  if (!isFodKind(kind)) {
    throw new FodderError(ErrorCode.USAGE, `unknown kind "${kind}"; kinds are: ${FOD_KINDS.join(', ')}`, { kind });
  }
  return kind;
}

/** The FODs the given crawls saw, each with the systems and variants it was seen in. */
export function listFods(db: Db, crawls: number[], f: FodFilter = {}): SeenFod[] {
  const kind = checkKind(f.kind);
  if (f.status !== undefined && !(FOD_STATUSES as readonly string[]).includes(f.status)) {
    throw new FodderError(ErrorCode.USAGE, `unknown status "${f.status}"; statuses are: ${FOD_STATUSES.join(', ')}`, { status: f.status });
  }
  const fods = seenFods(db, crawls, { kind, system: f.system, variant: f.variant });
  if (f.status === undefined) return fods;
  const statusOf = fodStatuses(db);
  return fods.filter((fod) => statusOf(fod.drvPath) === f.status);
}

/** Attribute records of one crawl. */
export function listAttrs(db: Db, crawl: number, f: { status?: string; system?: string; variant?: string } = {}): AttrRecord[] {
  if (f.status && !['drv', 'set', 'error', 'skipped'].includes(f.status)) {
    throw new FodderError(ErrorCode.USAGE, `unknown status "${f.status}"; statuses are: drv, set, error, skipped`, { status: f.status });
  }
  return attrRecords(db, crawl, f);
}

/** A FOD as the crawl recorded it, with its .drv text when the database keeps it (schema 3). */
export interface RecordedFod {
  fod: Fod;
  text: string | null;
}

/** Every FOD of the latest crawl (any system or variant) with its .drv text, one at a time. */
export function* recordedFods(db: Db): Generator<RecordedFod> {
  const latest = latestCrawlId(db);
  if (latest === null) throw new FodderError(ErrorCode.DB_EMPTY, 'the database holds no crawl yet: run `fodder crawl`');
  yield* fodsWithTexts(db, latest);
}
