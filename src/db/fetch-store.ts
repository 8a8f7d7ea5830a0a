import type { Db } from './open.js';
import { abandonDeadFetchRuns, ensureFetchSchema } from './fetch-schema.js';
import { currentOwner } from './owner.js';
import type { HashAlgo } from '../nix-formats/hash.js';

/** One try of one URL, as recorded in `fetch_attempts` (the fetch stage's AttemptRecord). */
export interface AttemptRow {
  url: string;
  urlIndex: number;
  /** 1 for the first try of this URL in this run */
  try: number;
  finalUrl: string | null;
  /** one of the fetch stage's outcome strings (src/fetch/outcome.ts) */
  outcome: string;
  httpStatus: number | null;
  ftpReply: number | null;
  bytes: number;
  resumedFrom: number | null;
  durationMs: number;
  /** for hash-mismatch: the hash of what was delivered, in the declared algorithm */
  actual: { algo: HashAlgo; hex: string } | null;
  message: string | null;
}

export interface ResultRow {
  drvPath: string;
  verdict: 'ok' | 'dead' | 'broken-hash' | 'unverifiable';
  /** unverifiable: why */
  reason?: string | null;
  message?: string | null;
  plugin?: string | null;
  url: string | null;
  urlIndex: number | null;
  actual: { algo: HashAlgo; hex: string } | null;
}

export interface MirroredRow {
  drvPath: string;
  path: string;
  algo: HashAlgo;
  hex: string;
  size: number | null;
  url: string | null;
  urlIndex: number | null;
}

/**
 * The fetch stage's single database writer. Rows are buffered and written in one transaction
 * per flush (the runner flushes every half second and at the end); statements are prepared once.
 */
export function createFetchStore(db: Db) {
  ensureFetchSchema(db);
  const s = {
    beginRun: db.prepare(`INSERT INTO fetch_runs (crawl_id, mirror_dir, options_json, status, started_at, pid, host, boot_id, pid_start)
      VALUES (?, ?, ?, 'running', ?, @pid, @host, @bootId, @start)`),
    finishRun: db.prepare(`UPDATE fetch_runs SET status = ?, finished_at = ?, summary_json = ? WHERE id = ?`),
    attempt: db.prepare(`INSERT INTO fetch_attempts (run_id, drv_path, url, url_index, try, final_url, outcome, http_status,
      ftp_reply, bytes, resumed_from, duration_ms, actual_algo, actual_hex, message, at)
      VALUES (@run, @drvPath, @url, @urlIndex, @try, @finalUrl, @outcome, @httpStatus, @ftpReply, @bytes, @resumedFrom,
      @durationMs, @actualAlgo, @actualHex, @message, @at)`),
    result: db.prepare(`INSERT OR REPLACE INTO fetch_results (run_id, drv_path, verdict, reason, message, plugin, url, url_index,
      actual_algo, actual_hex, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    mirrored: db.prepare(`INSERT OR REPLACE INTO mirror_state (drv_path, mirror_dir, path, hash_algo, hash_hex, size, url, url_index, run_id, mirrored_at)
      VALUES (@drvPath, @mirror, @path, @algo, @hex, @size, @url, @urlIndex, @run, @at)`),
    mirroredIn: db.prepare(`SELECT drv_path FROM mirror_state WHERE mirror_dir = ?`),
    lastFailed: db.prepare(`
      SELECT r.drv_path FROM fetch_results r
      WHERE r.verdict != 'ok' AND NOT (r.verdict = 'unverifiable' AND r.plugin IS NULL)
        AND r.run_id = (SELECT MAX(run_id) FROM fetch_results x WHERE x.drv_path = r.drv_path)`),
  };

  let attempts: Record<string, unknown>[] = [];
  let results: unknown[][] = [];
  let mirrored: Record<string, unknown>[] = [];
  const write = db.transaction(() => {
    for (const a of attempts) s.attempt.run(a);
    for (const r of results) s.result.run(...r);
    for (const m of mirrored) s.mirrored.run(m);
  });

  return {
    /** records a new run, owned by this process, once every run a dead process left `running` is marked interrupted */
    beginRun(crawlId: number, mirrorDir: string, options: unknown): number {
      abandonDeadFetchRuns(db);
      return Number(s.beginRun.run(crawlId, mirrorDir, JSON.stringify(options), new Date().toISOString(), currentOwner()).lastInsertRowid);
    },
    finishRun(run: number, status: 'done' | 'failed' | 'interrupted', summary: unknown): void {
      this.flush();
      s.finishRun.run(status, new Date().toISOString(), JSON.stringify(summary), run);
    },
    attempt(run: number, drvPath: string, a: AttemptRow): void {
      attempts.push({
        run,
        drvPath,
        url: a.url,
        urlIndex: a.urlIndex,
        try: a.try,
        finalUrl: a.finalUrl,
        outcome: a.outcome,
        httpStatus: a.httpStatus,
        ftpReply: a.ftpReply,
        bytes: a.bytes,
        resumedFrom: a.resumedFrom,
        durationMs: a.durationMs,
        actualAlgo: a.actual?.algo ?? null,
        actualHex: a.actual?.hex ?? null,
        message: a.message,
        at: new Date().toISOString(),
      });
    },
    result(run: number, r: ResultRow): void {
      results.push([
        run,
        r.drvPath,
        r.verdict,
        r.reason ?? null,
        r.message ?? null,
        r.plugin ?? null,
        r.url,
        r.urlIndex,
        r.actual?.algo ?? null,
        r.actual?.hex ?? null,
        new Date().toISOString(),
      ]);
    },
    mirrored(run: number | null, mirrorDir: string, m: MirroredRow): void {
      mirrored.push({ ...m, mirror: mirrorDir, run, at: new Date().toISOString() });
    },
    /** drv paths the database already knows are in this mirror */
    mirroredIn(mirrorDir: string): Set<string> {
      return new Set((s.mirroredIn.all(mirrorDir) as { drv_path: string }[]).map((r) => r.drv_path));
    },
    /**
     * drv paths whose latest verdict, in any run, was a failure of a plug-in that tried (not an
     * `unverifiable` for want of a plug-in: that is decided again each run, at no cost)
     */
    lastFailed(): Set<string> {
      return new Set((s.lastFailed.all() as { drv_path: string }[]).map((r) => r.drv_path));
    },
    flush(): void {
      if (!attempts.length && !results.length && !mirrored.length) return;
      write();
      attempts = [];
      results = [];
      mirrored = [];
    },
  };
}

export type FetchStore = ReturnType<typeof createFetchStore>;

/** The files `mirror_state` says one mirror holds: drv path and path relative to the mirror. */
export function mirrorStateOf(db: Db, mirrorRoot: string): { drv_path: string; path: string }[] {
  ensureFetchSchema(db);
  return db.prepare(`SELECT drv_path, path FROM mirror_state WHERE mirror_dir = ?`).all(mirrorRoot) as { drv_path: string; path: string }[];
}

/** Removes these sources' `mirror_state` rows of one mirror, in one transaction. */
export function forgetMirrorState(db: Db, mirrorRoot: string, drvPaths: readonly string[]): void {
  const del = db.prepare(`DELETE FROM mirror_state WHERE drv_path = ? AND mirror_dir = ?`);
  db.transaction(() => {
    for (const d of drvPaths) del.run(d, mirrorRoot);
  })();
}
