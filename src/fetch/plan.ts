import { FodderError, ErrorCode } from '../errors.js';
import type { Db } from '../db/open.js';
import type { Fod, FodKind } from '../graph/types.js';
import { FOD_COLUMNS, fodFromRow, type FodRow } from '../query/fod-row.js';
import type { FodEnv } from './types.js';

export interface CrawlInfo {
  id: number;
  nixpkgs: string;
  status: string;
  startedAt: string;
  finishedAt: string | null;
}

/** The latest crawl (highest id), or a DB_EMPTY error naming what to run. */
export function latestCrawl(db: Db): CrawlInfo {
  let row: { id: number; nixpkgs: string; status: string; started_at: string; finished_at: string | null } | undefined;
  try {
    row = db.prepare(`SELECT id, nixpkgs, status, started_at, finished_at FROM crawls ORDER BY id DESC LIMIT 1`).get() as typeof row;
  } catch (err) {
    throw new FodderError(ErrorCode.DB_INVALID, `not a fodder database: ${(err as Error).message}`);
  }
  if (!row) throw new FodderError(ErrorCode.DB_EMPTY, 'the database holds no crawl yet: run `fodder crawl` first');
  return { id: row.id, nixpkgs: row.nixpkgs, status: row.status, startedAt: row.started_at, finishedAt: row.finished_at };
}

/** Reads a FOD's .drv environment on demand (it can be large: not kept for every FOD at once). */
export function createEnvReader(db: Db): (drvPath: string) => FodEnv {
  const get = db.prepare(`SELECT env_json FROM fods WHERE drv_path = ?`).pluck();
  return (drvPath) => {
    const text = get.get(drvPath) as string | undefined;
    return text ? (JSON.parse(text) as Record<string, string>) : {};
  };
}

/** The FODs the crawl saw (any system or variant), of the given kinds, in a stable order. */
export function fodsOfCrawl(db: Db, crawlId: number, kinds: readonly FodKind[]): Fod[] {
  const rows = db.prepare(`
    SELECT ${FOD_COLUMNS} FROM fods f
    WHERE f.drv_path IN (SELECT drv_path FROM fod_seen WHERE crawl_id = ?)
      AND f.kind IN (SELECT value FROM json_each(?))
    ORDER BY f.name, f.drv_path`).all(crawlId, JSON.stringify(kinds)) as FodRow[];
  return rows.map(fodFromRow);
}

/** The drv store directory a crawl wrote its .drv files to (`--store`), or null for the system store. */
export function crawlStoreOf(db: Db, crawlId: number): string | null {
  const text = db.prepare(`SELECT params_json FROM crawls WHERE id = ?`).pluck().get(crawlId) as string | undefined;
  try {
    const store = (JSON.parse(text ?? '{}') as { store?: unknown }).store;
    return typeof store === 'string' && store !== '' ? store : null;
  } catch {
    return null;
  }
}
