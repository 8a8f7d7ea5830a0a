/**
 * What `fodder sources`, `fods` and `attrs` read: the FODs and attribute records of crawls. The
 * query stage (src/query/) checks the question and words the answer; the SQL is here.
 */
import type { Db } from './open.js';
import type { Fod, FodKind } from '../graph/types.js';
import { FOD_COLUMNS, fodFromRow, type FodRow } from './fod-row.js';

export type SeenFod = Fod & { systems: string[]; variants: string[] };

type Statement = ReturnType<Db['prepare']>;
const prepared = new WeakMap<Db, Map<string, Statement>>();

/** A statement the service asks for on every request, prepared once per database. */
function statement(db: Db, sql: string): Statement {
  const of = prepared.get(db) ?? prepared.set(db, new Map()).get(db)!;
  return of.get(sql) ?? of.set(sql, db.prepare(sql)).get(sql)!;
}

/** The FODs the given crawls saw, each with the systems and variants it was seen in. */
export function seenFods(db: Db, crawls: number[], f: { kind?: FodKind; system?: string; variant?: string } = {}): SeenFod[] {
  const rows = db
    .prepare(
      `
    WITH seen AS (SELECT * FROM fod_seen WHERE crawl_id IN (SELECT value FROM json_each(@crawls)))
    SELECT ${FOD_COLUMNS}, group_concat(DISTINCT s.system) systems, group_concat(DISTINCT s.variant) variants
    FROM fods f JOIN seen s ON s.drv_path = f.drv_path
    WHERE (@kind IS NULL OR f.kind = @kind)
      AND f.drv_path IN (SELECT drv_path FROM seen
                         WHERE (@system IS NULL OR system = @system) AND (@variant IS NULL OR variant = @variant))
    GROUP BY f.drv_path ORDER BY f.name, f.drv_path`,
    )
    .all({ crawls: JSON.stringify(crawls), kind: f.kind ?? null, system: f.system ?? null, variant: f.variant ?? null }) as (FodRow & {
    systems: string;
    variants: string;
  })[];
  return rows.map((r) => ({ ...fodFromRow(r), systems: r.systems.split(',').sort(), variants: r.variants.split(',').sort() }));
}

/** The .drv paths of the FODs a crawl saw (each once): enough to count them by status. */
export function seenFodDrvPaths(db: Db, crawl: number): string[] {
  return statement(db, `SELECT DISTINCT drv_path FROM fod_seen WHERE crawl_id = ?`).pluck().all(crawl) as string[];
}

export interface AttrRecord {
  path: string;
  system: string;
  variant: string;
  status: string;
  drvPath: string | null;
  errorKind: string | null;
  error: string | null;
  reason: string | null;
  aliasOf: string | null;
  crawl: number;
}

/** Attribute records of one crawl, narrowed to a status, system and variant when given. */
export function attrRecords(db: Db, crawl: number, f: { status?: string; system?: string; variant?: string } = {}): AttrRecord[] {
  const rows = db
    .prepare(
      `
    SELECT crawl_id, path, system, variant, status, drv_path, error_kind, error, reason, alias_of FROM attrs
    WHERE crawl_id = @crawl AND (@status IS NULL OR status = @status) AND (@system IS NULL OR system = @system)
      AND (@variant IS NULL OR variant = @variant)
    ORDER BY system, variant, path`,
    )
    .all({ crawl, status: f.status ?? null, system: f.system ?? null, variant: f.variant ?? null }) as Record<string, unknown>[];
  return rows.map((r) => ({
    path: r.path as string,
    system: r.system as string,
    variant: r.variant as string,
    status: r.status as string,
    drvPath: r.drv_path as string | null,
    errorKind: r.error_kind as string | null,
    error: r.error as string | null,
    reason: r.reason as string | null,
    aliasOf: r.alias_of as string | null,
    crawl: r.crawl_id as number,
  }));
}

/** The id of the latest crawl, whatever its status; null when there is none. */
export function latestCrawlId(db: Db): number | null {
  return (db.prepare(`SELECT MAX(id) id FROM crawls`).get() as { id: number | null }).id;
}

/** Every FOD of a crawl (any system or variant) with its .drv text when the database keeps it (schema 3), one at a time. */
export function* fodsWithTexts(db: Db, crawl: number): Generator<{ fod: Fod; text: string | null }> {
  const rows = db
    .prepare(
      `
    SELECT ${FOD_COLUMNS}, t.text FROM fods f LEFT JOIN drv_texts t ON t.drv_path = f.drv_path
    WHERE f.drv_path IN (SELECT drv_path FROM fod_seen WHERE crawl_id = ?)
    ORDER BY f.drv_path`,
    )
    .iterate(crawl) as IterableIterator<FodRow & { text: string | null }>;
  for (const r of rows) yield { fod: fodFromRow(r), text: r.text };
}

export interface AttrHit {
  crawl_id: number;
  system: string;
  variant: string;
  status: string;
  drv_path: string | null;
  error: string | null;
  error_kind: string | null;
  reason: string | null;
  alias_of: string | null;
}

/**
 * The record of attribute `path` from the latest crawl (of crawl `crawl`) that covered it,
 * preferring x86_64-linux, default; `finishedOnly`: only crawls whose status is `done`.
 */
export function latestAttrHit(db: Db, path: string, n: { system?: string; variant?: string; crawl?: number }, finishedOnly: boolean): AttrHit | undefined {
  return statement(
    db,
    `
    SELECT crawl_id, system, variant, status, drv_path, error, error_kind, reason, alias_of FROM attrs
    WHERE path = @path AND (@system IS NULL OR system = @system) AND (@variant IS NULL OR variant = @variant)
      AND (@crawl IS NULL OR crawl_id = @crawl)
      AND (@finished = 0 OR crawl_id IN (SELECT id FROM crawls WHERE status = 'done'))
    ORDER BY crawl_id DESC, system = 'x86_64-linux' DESC, variant = 'default' DESC, system, variant
    LIMIT 1`,
  ).get({ path, system: n.system ?? null, variant: n.variant ?? null, crawl: n.crawl ?? null, finished: finishedOnly ? 1 : 0 }) as AttrHit | undefined;
}

/** At most five recorded attribute paths containing `part`, shortest first. */
export function similarAttrPaths(db: Db, part: string): string[] {
  return (db.prepare(`SELECT DISTINCT path FROM attrs WHERE path LIKE ? ORDER BY length(path) LIMIT 5`).all(`%${part}%`) as { path: string }[]).map(
    (r) => r.path,
  );
}

/** The FODs in the .drv closure of `drvPath` (itself included), by name. */
export function fodsInClosure(db: Db, drvPath: string): Fod[] {
  const rows = statement(
    db,
    `
    WITH RECURSIVE c(p) AS (
      SELECT ? UNION SELECT i.input_drv FROM drv_inputs i JOIN c ON i.drv_path = c.p)
    SELECT ${FOD_COLUMNS} FROM c JOIN fods f ON f.drv_path = c.p ORDER BY f.name, f.drv_path`,
  ).all(drvPath) as FodRow[];
  return rows.map(fodFromRow);
}

/**
 * The size of each FOD's content as a fetch recorded it (`mirror_state.size`: the file, or the
 * NAR of a tree), by drvPath; empty when no fetch has run on this database.
 */
export function recordedSizes(db: Db): Map<string, number> {
  const table = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'mirror_state'`).get();
  if (!table) return new Map();
  const rows = db.prepare(`SELECT drv_path, size FROM mirror_state WHERE size IS NOT NULL`).all() as { drv_path: string; size: number }[];
  return new Map(rows.map((r) => [r.drv_path, r.size]));
}
