import { FodderError, ErrorCode } from '../errors.js';
import type { Db } from './open.js';
import { statusNow } from './owner.js';

/**
 * What became of a crawl: `running` (its process is alive), `done`, `interrupted` (stopped by a
 * signal, or its process is gone: killed, crashed, the machine rebooted), `failed` (stopped by
 * an error). Only `done` crawls are complete.
 */
export type CrawlStatus = 'running' | 'done' | 'interrupted' | 'failed';

export interface CrawlInfo {
  id: number;
  nixpkgs: string;
  /** the package set's git commit (a service following a branch), or null for a plain path */
  revision: string | null;
  status: CrawlStatus;
  startedAt: string;
  finishedAt: string | null;
}

interface CrawlRow {
  id: number;
  key: string;
  nixpkgs: string;
  revision: string | null;
  status: string;
  started_at: string;
  finished_at: string | null;
  pid: number | null;
  host: string | null;
  boot_id: string | null;
  pid_start: number | null;
}

/**
 * The crawls' rows; a database of schema 3 or older (read, not upgraded) has no owner columns,
 * and one no crawl has written to since `revision` came has no revision column.
 */
function crawlRows(db: Db, where: string, ...params: unknown[]): CrawlRow[] {
  const columns = new Set(db.prepare(`SELECT name FROM pragma_table_info('crawls')`).pluck().all() as string[]);
  const owner = columns.has('pid') ? 'pid, host, boot_id, pid_start' : 'NULL pid, NULL host, NULL boot_id, NULL pid_start';
  const revision = columns.has('revision') ? 'revision' : 'NULL revision';
  return db.prepare(`SELECT id, key, nixpkgs, ${revision}, status, started_at, finished_at, ${owner} FROM crawls ${where}`).all(...params) as CrawlRow[];
}

/** The status as it is now: a `running` crawl whose process is gone is interrupted. */
function judged(row: CrawlRow): CrawlStatus {
  return statusNow(row) as CrawlStatus;
}

function info(row: CrawlRow): CrawlInfo {
  return { id: row.id, nixpkgs: row.nixpkgs, revision: row.revision, status: judged(row), startedAt: row.started_at, finishedAt: row.finished_at };
}

/** One crawl by id, with its status as it is now; null when there is none. */
export function crawlById(db: Db, id: number): CrawlInfo | null {
  const [row] = crawlRows(db, 'WHERE id = ?', id);
  return row ? info(row) : null;
}

/** Every crawl, newest first (at most `limit`), each with its status as it is now. */
export function listCrawls(db: Db, limit = 100): CrawlInfo[] {
  return crawlRows(db, 'ORDER BY id DESC LIMIT ?', limit).map(info);
}

/** The ids of every finished crawl, oldest first. */
export function finishedCrawlIds(db: Db): number[] {
  return db.prepare(`SELECT id FROM crawls WHERE status = 'done' ORDER BY id`).pluck().all() as number[];
}

/**
 * The crawl a query or report reads: `id` when given (whatever its status; CRAWL_UNKNOWN when
 * there is none), else the latest finished one. A database with crawls but none finished says
 * which there are and how to go on.
 */
export function chooseCrawl(db: Db, id?: number): CrawlInfo {
  if (id !== undefined) {
    const found = crawlById(db, id);
    if (!found) {
      const last = db.prepare(`SELECT MAX(id) FROM crawls`).pluck().get() as number | null;
      throw new FodderError(ErrorCode.CRAWL_UNKNOWN, `there is no crawl ${id}${last === null ? ': the database holds none' : ` (the latest is ${last})`}`, {
        crawl: id,
      });
    }
    return found;
  }
  const [done] = crawlRows(db, `WHERE status = 'done' ORDER BY id DESC LIMIT 1`);
  if (done) return info(done);
  const [latest] = crawlRows(db, 'ORDER BY id DESC LIMIT 1');
  if (!latest) throw new FodderError(ErrorCode.DB_EMPTY, 'the database holds no crawl yet: run `fodder crawl` first');
  const status = judged(latest);
  const next = status === 'running' ? 'wait for it to finish' : 'run the same `fodder crawl` again to finish it';
  throw new FodderError(
    ErrorCode.CRAWL_UNFINISHED,
    `the database holds no finished crawl: crawl ${latest.id} is ${status}; ${next}, or pass --crawl ${latest.id} to read what it has recorded so far`,
    { crawl: latest.id, status },
  );
}

/** The unfinished crawl of this key (the latest), to resume; null when there is none. */
export function unfinishedCrawl(db: Db, key: string): (CrawlInfo & { pid: number | null; host: string | null }) | null {
  const [row] = crawlRows(db, `WHERE key = ? AND status != 'done' ORDER BY id DESC LIMIT 1`, key);
  return row ? { ...info(row), pid: row.pid, host: row.host } : null;
}

/**
 * The crawls `fodder gc` keeps: every finished crawl of the newest `keep` revisions (a crawl of
 * a plain path, with no commit recorded, is a revision of its own), and every unfinished crawl
 * newer than the oldest of those (it may be resumed, or be running now). With no finished crawl,
 * every crawl is kept.
 */
export function keptCrawlIds(db: Db, keep: number): number[] {
  const all = crawlRows(db, 'ORDER BY id DESC');
  const done = all.filter((r) => r.status === 'done');
  if (done.length === 0) return all.map((r) => r.id).sort((a, b) => a - b);
  const revisions: string[] = [];
  for (const r of done) {
    const rev = r.revision ?? `crawl ${r.id}`;
    if (!revisions.includes(rev)) revisions.push(rev);
  }
  const keptRevisions = new Set(revisions.slice(0, keep));
  const kept = done.filter((r) => keptRevisions.has(r.revision ?? `crawl ${r.id}`));
  const oldest = Math.min(...kept.map((r) => r.id));
  return all
    .filter((r) => kept.includes(r) || (r.status !== 'done' && r.id > oldest))
    .map((r) => r.id)
    .sort((a, b) => a - b);
}
