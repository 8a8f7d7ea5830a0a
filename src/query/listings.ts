import { FodderError, ErrorCode } from '../errors.js';
import type { Db } from '../db/open.js';
import { FOD_KINDS, isFodKind, type Fod, type FodKind } from '../graph/types.js';
import { FOD_COLUMNS, fodFromRow, type FodRow } from './fod-row.js';

export type SeenFod = Fod & { systems: string[]; variants: string[] };

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
  const rows = db.prepare(`
    WITH seen AS (SELECT * FROM fod_seen WHERE crawl_id IN (SELECT value FROM json_each(@crawls)))
    SELECT ${FOD_COLUMNS}, group_concat(DISTINCT s.system) systems, group_concat(DISTINCT s.variant) variants
    FROM fods f JOIN seen s ON s.drv_path = f.drv_path
    WHERE (@kind IS NULL OR f.kind = @kind)
      AND f.drv_path IN (SELECT drv_path FROM seen
                         WHERE (@system IS NULL OR system = @system) AND (@variant IS NULL OR variant = @variant))
    GROUP BY f.drv_path ORDER BY f.name, f.drv_path`).all({
    crawls: JSON.stringify(crawls), kind: kind ?? null, system: f.system ?? null, variant: f.variant ?? null,
  }) as (FodRow & { systems: string; variants: string })[];
  return rows.map((r) => ({
    ...fodFromRow(r),
    systems: r.systems.split(',').sort(),
    variants: r.variants.split(',').sort(),
  }));
}

export interface AttrRecord {
  path: string; system: string; variant: string; status: string; drvPath: string | null;
  errorKind: string | null; error: string | null; reason: string | null; aliasOf: string | null; crawl: number;
}

/** Attribute records of one crawl. */
export function listAttrs(db: Db, crawl: number, f: { status?: string; system?: string; variant?: string } = {}): AttrRecord[] {
  if (f.status && !['drv', 'set', 'error', 'skipped'].includes(f.status)) {
    throw new FodderError(ErrorCode.USAGE, `unknown status "${f.status}"; statuses are: drv, set, error, skipped`, { status: f.status });
  }
  const rows = db.prepare(`
    SELECT crawl_id, path, system, variant, status, drv_path, error_kind, error, reason, alias_of FROM attrs
    WHERE crawl_id = @crawl AND (@status IS NULL OR status = @status) AND (@system IS NULL OR system = @system)
      AND (@variant IS NULL OR variant = @variant)
    ORDER BY system, variant, path`).all({ crawl, status: f.status ?? null, system: f.system ?? null, variant: f.variant ?? null }) as Record<string, unknown>[];
  return rows.map((r) => ({
    path: r.path as string, system: r.system as string, variant: r.variant as string, status: r.status as string,
    drvPath: r.drv_path as string | null, errorKind: r.error_kind as string | null, error: r.error as string | null,
    reason: r.reason as string | null, aliasOf: r.alias_of as string | null, crawl: r.crawl_id as number,
  }));
}

/** A FOD as the crawl recorded it, with its .drv text when the database keeps it (schema 3). */
export interface RecordedFod { fod: Fod; text: string | null }

/** Every FOD of the latest crawl (any system or variant) with its .drv text, one at a time. */
export function* recordedFods(db: Db): Generator<RecordedFod> {
  const latest = db.prepare(`SELECT MAX(id) id FROM crawls`).get() as { id: number | null };
  if (latest.id === null) throw new FodderError(ErrorCode.DB_EMPTY, 'the database holds no crawl yet: run `fodder crawl`');
  const rows = db.prepare(`
    SELECT ${FOD_COLUMNS}, t.text FROM fods f LEFT JOIN drv_texts t ON t.drv_path = f.drv_path
    WHERE f.drv_path IN (SELECT drv_path FROM fod_seen WHERE crawl_id = ?)
    ORDER BY f.drv_path`).iterate(latest.id) as IterableIterator<FodRow & { text: string | null }>;
  for (const r of rows) yield { fod: fodFromRow(r), text: r.text };
}
