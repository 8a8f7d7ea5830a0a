/**
 * What `fodder report` reads of the fetch history (fetch_results, fetch_attempts, mirror_state),
 * the crawl's evaluation errors and graph, and the snapshot it leaves for the next report. The
 * report stage (src/report/) decides what each row means; the SQL is here.
 */
import type { Db } from './open.js';

/** A `fetch_results` row. */
export interface VerdictOfRun {
  run_id: number;
  drv_path: string;
  verdict: string;
  reason: string | null;
  message: string | null;
  plugin: string | null;
  url: string | null;
  url_index: number | null;
  actual_algo: string | null;
  actual_hex: string | null;
  at: string;
}
/** A `fetch_attempts` row, the columns a report shows. */
export interface TryRow {
  url: string;
  url_index: number;
  outcome: string;
  http_status: number | null;
  message: string | null;
}
/** One run's verdict on a source, newest first (`fetchHistory`). */
export interface VerdictRow {
  verdict: string;
  url_index: number | null;
  at: string;
}

/** The drv paths the mirror holds (any mirror directory). */
export function mirroredDrvPaths(db: Db): Set<string> {
  return new Set((db.prepare(`SELECT drv_path FROM mirror_state`).raw().all() as [string][]).map((r) => r[0]));
}

/** Every source's latest verdict, by drv path. */
export function latestResults(db: Db): Map<string, VerdictOfRun> {
  const latest = new Map<string, VerdictOfRun>();
  for (const r of db
    .prepare(
      `SELECT r.* FROM fetch_results r
      WHERE r.run_id = (SELECT MAX(run_id) FROM fetch_results x WHERE x.drv_path = r.drv_path)`,
    )
    .all() as VerdictOfRun[]) {
    latest.set(r.drv_path, r);
  }
  return latest;
}

/** A source's verdicts, newest run first, and the tries of one run; statements prepared once. */
export function createFetchHistory(db: Db) {
  const history = db.prepare(`SELECT verdict, url_index, at FROM fetch_results WHERE drv_path = ? ORDER BY run_id DESC`);
  const attemptsOf = db.prepare(`SELECT url, url_index, outcome, http_status, message FROM fetch_attempts
    WHERE run_id = ? AND drv_path = ? ORDER BY id`);
  return { verdicts: (drv: string) => history.all(drv) as VerdictRow[], attempts: (run: number, drv: string) => attemptsOf.all(run, drv) as TryRow[] };
}

/** The latest report snapshot, or undefined when no report was saved yet. */
export function previousSnapshot(db: Db): { id: number; created_at: string; keys_json: string } | undefined {
  return db.prepare(`SELECT id, created_at, keys_json FROM report_snapshots ORDER BY id DESC LIMIT 1`).get() as
    { id: number; created_at: string; keys_json: string } | undefined;
}

/** Records what a report listed, so the next one can tell what is new. */
export function saveSnapshot(db: Db, crawlId: number, createdAt: string, keys: string[]): void {
  db.prepare(`INSERT INTO report_snapshots (crawl_id, created_at, keys_json) VALUES (?, ?, ?)`).run(crawlId, createdAt, JSON.stringify(keys));
}

/** The attributes of a crawl that failed to evaluate, by path, system and variant. */
export function evalErrorsOf(db: Db, crawlId: number): { path: string; system: string; variant: string; error: string | null; error_kind: string | null }[] {
  return db
    .prepare(
      `SELECT path, system, variant, error, error_kind FROM attrs
      WHERE crawl_id = ? AND status = 'error' ORDER BY path, system, variant`,
    )
    .all(crawlId) as { path: string; system: string; variant: string; error: string | null; error_kind: string | null }[];
}

/** Every edge of the derivation graph, `[drvPath, inputDrv]`, one at a time. */
export function drvEdges(db: Db): Iterable<[string, string]> {
  return db.prepare(`SELECT drv_path, input_drv FROM drv_inputs`).raw().iterate() as Iterable<[string, string]>;
}

/** `[attribute path, drvPath]` of every derivation attribute of a crawl, one at a time. */
export function attrDrvs(db: Db, crawlId: number): Iterable<[string, string]> {
  return db
    .prepare(`SELECT DISTINCT path, drv_path FROM attrs WHERE crawl_id = ? AND status = 'drv' AND drv_path IS NOT NULL`)
    .raw()
    .iterate(crawlId) as Iterable<[string, string]>;
}
