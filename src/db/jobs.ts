import type { Db } from './open.js';
import { addMissingColumns } from './columns.js';
import { rowOwnerAlive, statusNow, type Owner } from './owner.js';

/**
 * The service's jobs (`fodder serve`, docs/api.md): one row per job, a crawl, a fetch and a
 * report of the configured package set. Like crawls and fetch runs, a job records the process
 * that runs it (src/db/owner.ts): a `running` job whose process is gone was killed, is shown
 * `interrupted`, and is taken up again by the next service on this database.
 */
export const JOB_SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY,
  trigger TEXT NOT NULL,         -- request (POST /api/jobs), schedule, resume
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'interrupted')),
  stage TEXT,                    -- crawl, fetch, report: the one running, or where it stopped
  crawl_id INTEGER,              -- the crawl it made (or resumed), once known
  fetch_run_id INTEGER,          -- its last fetch run, once finished
  error_code TEXT,
  error TEXT,
  stages_json TEXT NOT NULL DEFAULT '{}', -- seconds each finished stage took
  created_at TEXT NOT NULL,
  started_at TEXT,
  finished_at TEXT,
  pid INTEGER,
  host TEXT,
  boot_id TEXT,
  pid_start INTEGER
);
`;

/** Columns added after the table first shipped, with their types (added in place, all nullable). */
const LATER_COLUMNS: Record<string, string> = {};

/** Creates the jobs table when missing and adds what an older one lacks. Idempotent. */
export function ensureJobSchema(db: Db): void {
  db.exec(JOB_SCHEMA_SQL);
  addMissingColumns(db, 'jobs', LATER_COLUMNS);
}

export type JobStatus = 'queued' | 'running' | 'done' | 'failed' | 'interrupted';
export type JobStage = 'crawl' | 'fetch' | 'report';
export type JobTrigger = 'request' | 'schedule';

/** One job, its status as it is now (a `running` job whose process is gone is `interrupted`). */
export interface JobInfo {
  id: number;
  status: JobStatus;
  stage: JobStage | null;
  error: string | null;
  errorCode: string | null;
  trigger: JobTrigger;
  crawl: number | null;
  fetchRun: number | null;
  /** seconds each finished stage took */
  stages: Partial<Record<JobStage, number>>;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

interface JobRow {
  id: number;
  trigger: JobTrigger;
  status: JobStatus;
  stage: JobStage | null;
  crawl_id: number | null;
  fetch_run_id: number | null;
  error_code: string | null;
  error: string | null;
  stages_json: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  pid: number | null;
  boot_id: string | null;
  pid_start: number | null;
}

const COLUMNS = `id, trigger, status, stage, crawl_id, fetch_run_id, error_code, error, stages_json, created_at, started_at,
  finished_at, pid, boot_id, pid_start`;

function judged(r: JobRow): JobStatus {
  return statusNow(r);
}

function info(r: JobRow): JobInfo {
  return {
    id: r.id,
    status: judged(r),
    stage: r.stage,
    error: r.error,
    errorCode: r.error_code,
    trigger: r.trigger,
    crawl: r.crawl_id,
    fetchRun: r.fetch_run_id,
    stages: JSON.parse(r.stages_json) as JobInfo['stages'],
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}

const now = () => new Date().toISOString();

/** Every job, newest first (at most `limit`). */
export function listJobs(db: Db, limit = 100): JobInfo[] {
  return (db.prepare(`SELECT ${COLUMNS} FROM jobs ORDER BY id DESC LIMIT ?`).all(limit) as JobRow[]).map(info);
}

/** One job, or null. */
export function jobById(db: Db, id: number): JobInfo | null {
  const row = db.prepare(`SELECT ${COLUMNS} FROM jobs WHERE id = ?`).get(id) as JobRow | undefined;
  return row ? info(row) : null;
}

/** Records a new queued job; returns its id. */
export function addJob(db: Db, trigger: JobTrigger, owner: Owner): number {
  return Number(
    db
      .prepare(
        `INSERT INTO jobs (trigger, status, created_at, pid, host, boot_id, pid_start)
    VALUES (?, 'queued', ?, ?, ?, ?, ?)`,
      )
      .run(trigger, now(), owner.pid, owner.host, owner.bootId, owner.start).lastInsertRowid,
  );
}

/**
 * Takes a job up in this process: marks it running here (a resumed one keeps its stage, crawl
 * and first start), unless a live process already runs it. One process writes a job's row at a
 * time: when a service is killed just after it started a job's process, the next service may
 * start another for the same job; whichever comes second is refused here. Returns whether the
 * job is now this process's.
 */
export function claimJob(db: Db, id: number, owner: Owner): boolean {
  return db
    .transaction(() => {
      const row = db.prepare(`SELECT ${COLUMNS} FROM jobs WHERE id = ?`).get(id) as JobRow | undefined;
      if (!row || row.status === 'done' || row.status === 'failed' || (row.status === 'running' && rowOwnerAlive(row))) return false;
      db.prepare(
        `UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?), finished_at = NULL, error = NULL,
    error_code = NULL, pid = ?, host = ?, boot_id = ?, pid_start = ? WHERE id = ?`,
      ).run(now(), owner.pid, owner.host, owner.bootId, owner.start, id);
      return true;
    })
    .immediate();
}

/** The stage a job has reached, and the crawl or fetch run it made when known. */
export function setJobStage(db: Db, id: number, stage: JobStage, made: { crawl?: number; fetchRun?: number } = {}): void {
  db.prepare(`UPDATE jobs SET stage = ?, crawl_id = COALESCE(?, crawl_id), fetch_run_id = COALESCE(?, fetch_run_id) WHERE id = ?`).run(
    stage,
    made.crawl ?? null,
    made.fetchRun ?? null,
    id,
  );
}

/** Records how long a finished stage took. */
export function setStageSeconds(db: Db, id: number, stage: JobStage, seconds: number): void {
  db.prepare(`UPDATE jobs SET stages_json = json_set(stages_json, '$.' || ?, ?) WHERE id = ?`).run(stage, seconds, id);
}

/** Ends a job: done, failed (with the error) or interrupted (a signal). */
export function finishJob(db: Db, id: number, status: 'done' | 'failed' | 'interrupted', error: { code: string; message: string } | null = null): void {
  db.prepare(`UPDATE jobs SET status = ?, error_code = ?, error = ?, finished_at = ? WHERE id = ?`).run(
    status,
    error?.code ?? null,
    error?.message ?? null,
    now(),
    id,
  );
}

/**
 * Ends a job that has no verdict yet (still queued or running): its process died before it
 * recorded one. A verdict already recorded is kept. Returns whether the job was ended here.
 */
export function endUnfinishedJob(db: Db, id: number, status: 'failed' | 'interrupted', error: { code: string; message: string }): boolean {
  const r = db
    .prepare(`UPDATE jobs SET status = ?, error_code = ?, error = ?, finished_at = ? WHERE id = ? AND status IN ('queued', 'running')`)
    .run(status, error.code, error.message, now(), id);
  return r.changes > 0;
}

/** The jobs `running` in a process that still runs, oldest first (another service's, or a job process still stopping). */
export function jobsRunningElsewhere(db: Db): number[] {
  const rows = db.prepare(`SELECT ${COLUMNS} FROM jobs WHERE status = 'running' ORDER BY id`).all() as JobRow[];
  return rows.filter((r) => rowOwnerAlive(r)).map((r) => r.id);
}

/**
 * The jobs a service starting on this database takes up, oldest first: those interrupted (by a
 * signal, or whose process died, which are marked so now) and those queued by a process that
 * is gone, but none older than the latest job that finished (a later job did its work).
 */
export function jobsToResume(db: Db): number[] {
  const rows = db
    .prepare(
      `SELECT ${COLUMNS} FROM jobs
    WHERE id > COALESCE((SELECT MAX(id) FROM jobs WHERE status IN ('done', 'failed')), 0)
      AND status IN ('queued', 'running', 'interrupted') ORDER BY id`,
    )
    .all() as JobRow[];
  const take = rows.filter((r) => r.status === 'interrupted' || !rowOwnerAlive(r));
  const mark = db.prepare(`UPDATE jobs SET status = 'interrupted', finished_at = ? WHERE id = ? AND status = 'running'`);
  db.transaction(() => {
    for (const r of take) if (r.status === 'running') mark.run(now(), r.id);
  }).immediate();
  return take.map((r) => r.id);
}
