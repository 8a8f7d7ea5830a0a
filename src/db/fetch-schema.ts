import type { Db } from './open.js';
import { addMissingColumns } from './columns.js';
import { statusNow } from './owner.js';

/**
 * Tables of the fetch stage, the mirror and the report. They sit beside the crawl's tables and
 * are keyed by drv_path, not by crawl: a source's history (dead since, broken since) carries
 * over from one crawl to the next as long as its derivation is the same.
 */
export const FETCH_SCHEMA_SQL = `
-- one row per \`fodder fetch\` invocation
CREATE TABLE IF NOT EXISTS fetch_runs (
  id INTEGER PRIMARY KEY,
  crawl_id INTEGER,              -- the crawl whose FODs were fetched
  mirror_dir TEXT NOT NULL,
  options_json TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'interrupted')),
  started_at TEXT NOT NULL,
  finished_at TEXT,
  summary_json TEXT,             -- the --json summary once finished
  -- the process that runs it (as for crawls, src/db/owner.ts): a running run whose process is
  -- gone was killed, and is marked interrupted by the next run
  pid INTEGER,
  host TEXT,
  boot_id TEXT,
  pid_start INTEGER
);

-- every try of every URL: the raw history
CREATE TABLE IF NOT EXISTS fetch_attempts (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL,
  drv_path TEXT NOT NULL,
  url TEXT NOT NULL,             -- the URL tried, mirror:// already expanded
  url_index INTEGER NOT NULL,    -- its position in the FOD's resolved URLs
  try INTEGER NOT NULL,          -- 1 for the first try of this URL in this run
  final_url TEXT,                -- after redirects
  outcome TEXT NOT NULL,         -- ok, http-404, timeout, hash-mismatch, ... (src/fetch/outcome.ts)
  http_status INTEGER,           -- last HTTP status seen
  ftp_reply INTEGER,             -- last FTP reply code seen
  bytes INTEGER NOT NULL,        -- bytes received in this try
  resumed_from INTEGER,          -- byte offset a resumed try started at
  duration_ms INTEGER NOT NULL,
  actual_algo TEXT,              -- hash-mismatch: the hash the content has
  actual_hex TEXT,
  message TEXT,
  at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fetch_attempts_drv ON fetch_attempts(drv_path, run_id);
CREATE INDEX IF NOT EXISTS fetch_attempts_run ON fetch_attempts(run_id);

-- the verdict on one FOD in one run (only for FODs the run actually tried)
CREATE TABLE IF NOT EXISTS fetch_results (
  run_id INTEGER NOT NULL,
  drv_path TEXT NOT NULL,
  verdict TEXT NOT NULL CHECK (verdict IN ('ok', 'dead', 'broken-hash', 'unverifiable')),
  reason TEXT,                   -- unverifiable: why (src/fetch/types.ts UnverifiableReason)
  message TEXT,
  plugin TEXT,                   -- the plug-in whose verdict this is (url, archive, git, nix)
  url TEXT,                      -- ok: the URL that delivered; broken-hash: the first that mismatched
  url_index INTEGER,
  actual_algo TEXT,              -- broken-hash: what that URL delivered
  actual_hex TEXT,
  at TEXT NOT NULL,
  PRIMARY KEY (run_id, drv_path)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fetch_results_drv ON fetch_results(drv_path, run_id);

-- which FOD's content the mirror holds, and where
CREATE TABLE IF NOT EXISTS mirror_state (
  drv_path TEXT PRIMARY KEY,
  mirror_dir TEXT NOT NULL,      -- absolute
  path TEXT NOT NULL,            -- relative to mirror_dir: tarballs/<algo>/<hex> of the declared hash
  hash_algo TEXT NOT NULL,
  hash_hex TEXT NOT NULL,
  size INTEGER,
  url TEXT,                      -- where it came from; NULL when found already in the mirror
  url_index INTEGER,
  run_id INTEGER,
  mirrored_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mirror_state_hash ON mirror_state(hash_algo, hash_hex);

-- what each \`fodder report\` listed, so the next one can say what is new
CREATE TABLE IF NOT EXISTS report_snapshots (
  id INTEGER PRIMARY KEY,
  crawl_id INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  keys_json TEXT NOT NULL        -- JSON array of entry keys ("dead:<drv>", "broken:<drv>", ...)
);
`;

/** The owner columns a fetch_runs table made before they existed lacks (added in place, all nullable). */
const OWNER_COLUMNS = { pid: 'INTEGER', host: 'TEXT', boot_id: 'TEXT', pid_start: 'INTEGER' } as const;

/** Creates the fetch stage's tables when missing. Idempotent; every fetch-side entry point calls it. */
export function ensureFetchSchema(db: Db): void {
  db.exec(FETCH_SCHEMA_SQL);
  addMissingColumns(db, 'fetch_runs', OWNER_COLUMNS);
}

export type FetchRunStatus = 'running' | 'done' | 'failed' | 'interrupted';

/** One fetch run, its status as it is now: a `running` run whose process is gone is interrupted. */
export interface FetchRunInfo {
  id: number;
  crawl: number | null;
  mirror: string;
  status: FetchRunStatus;
  startedAt: string;
  finishedAt: string | null;
}

interface FetchRunRow {
  id: number;
  crawl_id: number | null;
  mirror_dir: string;
  status: FetchRunStatus;
  started_at: string;
  finished_at: string | null;
  pid: number | null;
  boot_id: string | null;
  pid_start: number | null;
}

/** Every fetch run, newest first, each with its status as it is now. */
export function fetchRuns(db: Db): FetchRunInfo[] {
  const rows = db
    .prepare(
      `SELECT id, crawl_id, mirror_dir, status, started_at, finished_at, pid, boot_id, pid_start
    FROM fetch_runs ORDER BY id DESC`,
    )
    .all() as FetchRunRow[];
  return rows.map((r) => ({ id: r.id, crawl: r.crawl_id, mirror: r.mirror_dir, startedAt: r.started_at, finishedAt: r.finished_at, status: statusNow(r) }));
}

/**
 * Marks `interrupted` every run still recorded `running` whose process is gone (killed, crashed,
 * the machine rebooted); returns their ids. Called by each new run, under the mirror's lock.
 */
export function abandonDeadFetchRuns(db: Db): number[] {
  const dead = fetchRuns(db)
    .filter((r) => r.status === 'interrupted' && r.finishedAt === null)
    .map((r) => r.id);
  if (dead.length > 0) {
    const mark = db.prepare(`UPDATE fetch_runs SET status = 'interrupted', finished_at = ? WHERE id = ? AND status = 'running'`);
    const now = new Date().toISOString();
    db.transaction(() => {
      for (const id of dead) mark.run(now, id);
    }).immediate();
  }
  return dead;
}
