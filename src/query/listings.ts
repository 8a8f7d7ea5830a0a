import { FodderError, ErrorCode } from '../errors.js';
import type { Db } from '../db/open.js';
import { FOD_KINDS, isFodKind, type Fod, type FodKind } from '../graph/types.js';
import { attrRecords, fodsWithTexts, latestCrawlId, seenFods, type AttrRecord, type SeenFod } from '../db/queries.js';

export interface FodFilter { system?: string; variant?: string; kind?: string }

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
  return seenFods(db, crawls, { kind, system: f.system, variant: f.variant });
}

/** Attribute records of one crawl. */
export function listAttrs(db: Db, crawl: number, f: { status?: string; system?: string; variant?: string } = {}): AttrRecord[] {
  if (f.status && !['drv', 'set', 'error', 'skipped'].includes(f.status)) {
    throw new FodderError(ErrorCode.USAGE, `unknown status "${f.status}"; statuses are: drv, set, error, skipped`, { status: f.status });
  }
  return attrRecords(db, crawl, f);
}

/** A FOD as the crawl recorded it, with its .drv text when the database keeps it (schema 3). */
export interface RecordedFod { fod: Fod; text: string | null }

/** Every FOD of the latest crawl (any system or variant) with its .drv text, one at a time. */
export function* recordedFods(db: Db): Generator<RecordedFod> {
  const latest = latestCrawlId(db);
  if (latest === null) throw new FodderError(ErrorCode.DB_EMPTY, 'the database holds no crawl yet: run `fodder crawl`');
  yield* fodsWithTexts(db, latest);
}
