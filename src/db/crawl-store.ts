import { FodderError, ErrorCode } from '../errors.js';
import type { Db } from './open.js';
import { addMissingColumns } from './columns.js';
import { CRAWL_LATER_COLUMNS } from './schema.js';
import { unfinishedCrawl } from './crawls.js';
import { currentOwner, type Owner } from './owner.js';
import type { DrvNode, StoreSource } from '../graph/types.js';
import { needsEnv } from '../graph/fod.js';

/** An attribute row as the coordinator keeps it in memory. */
export interface AttrRow {
  path: string;
  pathJson: string[];
  parent: string | null;
  depth: number;
  status: 'drv' | 'set' | 'error' | 'skipped';
  drvPath: string | null;
  errorKind: string | null;
  error: string | null;
  reason: string | null;
  recurse: boolean;
  children: string[] | null;
  sig: string | null;
  aliasOf: string | null;
}

export interface Target {
  system: string;
  variant: string;
}

/** One shard's records, as the coordinator writes them; `seenFods`: the FODs in the closure of its derivation attributes. */
export interface ShardWrite {
  crawl: number;
  target: Target;
  rows: AttrRow[];
  drvs: DrvNode[];
  sources: StoreSource[];
  seenFods: string[];
}

/** The crawl's single writer: every statement prepared once, every batch one transaction. */
export function createCrawlStore(db: Db) {
  addMissingColumns(db, 'crawls', CRAWL_LATER_COLUMNS);
  const s = {
    insertCrawl: db.prepare(`INSERT INTO crawls (key, nixpkgs, revision, params_json, mirrors_json, status, started_at, pid, host, boot_id, pid_start)
                             VALUES (?, ?, ?, ?, ?, 'running', ?, @pid, @host, @bootId, @start)`),
    claim: db.prepare(`UPDATE crawls SET status = 'running', finished_at = NULL, pid = @pid, host = @host, boot_id = @bootId,
                       pid_start = @start WHERE id = @id`),
    insertTarget: db.prepare(`INSERT OR IGNORE INTO crawl_targets (crawl_id, system, variant, config_json) VALUES (?, ?, ?, ?)`),
    targets: db.prepare(`SELECT system, variant, done FROM crawl_targets WHERE crawl_id = ? ORDER BY system, variant`),
    attrs: db.prepare(`SELECT * FROM attrs WHERE crawl_id = ? AND system = ? AND variant = ?`),
    insertAttr: db.prepare(`INSERT OR REPLACE INTO attrs
      (crawl_id, system, variant, path, path_json, parent, depth, status, drv_path, error_kind, error, reason,
       recurse, children_json, sig, alias_of)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    setSig: db.prepare(`UPDATE attrs SET sig = ?, alias_of = ? WHERE crawl_id = ? AND system = ? AND variant = ? AND path = ?`),
    insertDrv: db.prepare(`INSERT OR IGNORE INTO drvs (drv_path, name, system, outputs_json, is_fod, inputs_json) VALUES (?, ?, ?, ?, ?, ?)`),
    insertText: db.prepare(`INSERT OR IGNORE INTO drv_texts (drv_path, text) VALUES (?, ?)`),
    insertSource: db.prepare(`INSERT OR IGNORE INTO store_sources (path, nar, references_json) VALUES (?, ?, ?)`),
    insertFod: db.prepare(`INSERT OR IGNORE INTO fods (drv_path, out_path, name, kind, hash_algo, hash_mode, hash_hex,
      hash_sri, urls_json, resolved_urls_json, git_json, post_fetch, env_json)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    insertSeen: db.prepare(`INSERT OR IGNORE INTO fod_seen (crawl_id, system, variant, drv_path) VALUES (?, ?, ?, ?)`),
    clearSeen: db.prepare(`DELETE FROM fod_seen WHERE crawl_id = ? AND system = ? AND variant = ?`),
    fillSeen: db.prepare(`
      INSERT OR IGNORE INTO fod_seen (crawl_id, system, variant, drv_path)
      WITH RECURSIVE c(p) AS (
        SELECT drv_path FROM attrs WHERE crawl_id = @crawl AND system = @system AND variant = @variant AND status = 'drv'
        UNION
        SELECT i.input_drv FROM drv_inputs i JOIN c ON i.drv_path = c.p
      )
      SELECT @crawl, @system, @variant, c.p FROM c JOIN fods f ON f.drv_path = c.p`),
    targetDone: db.prepare(`UPDATE crawl_targets SET done = 1 WHERE crawl_id = ? AND system = ? AND variant = ?`),
    finish: db.prepare(`UPDATE crawls SET status = 'done', finished_at = ?, duration_ms = ? WHERE id = ?`),
  };

  // keys are store-path hashes: inserting a batch in key order touches each B-tree page once
  const insertShard = ({ crawl, target: t, rows, drvs: unsorted, sources, seenFods }: ShardWrite) => {
    const added = { drvs: 0, fods: 0 };
    const drvs = [...unsorted].sort((a, b) => (a.drvPath < b.drvPath ? -1 : a.drvPath > b.drvPath ? 1 : 0));
    const fods: DrvNode[] = [];
    for (const d of drvs) {
      const r = s.insertDrv.run(d.drvPath, d.name, d.system, JSON.stringify(d.outputs), d.fod ? 1 : 0, JSON.stringify(d.inputDrvs));
      // a derivation recorded by a schema 2 crawl gets its text now
      s.insertText.run(d.drvPath, d.text);
      if (r.changes === 0) continue;
      added.drvs++;
      if (d.fod) fods.push(d);
    }
    for (const d of fods) {
      const f = d.fod!;
      added.fods++;
      s.insertFod.run(
        f.drvPath,
        f.outPath,
        f.name,
        f.kind,
        f.hash.algo,
        f.hash.mode,
        f.hash.hex,
        f.hash.sri,
        JSON.stringify(f.urls),
        JSON.stringify(f.resolvedUrls),
        f.git ? JSON.stringify(f.git) : null,
        f.postFetch ? 1 : 0,
        // a plain download needs nothing beyond the Fod fields; other kinds keep their whole env
        needsEnv(f) ? JSON.stringify(d.fodEnv ?? {}) : '{}',
      );
    }
    for (const src of sources) s.insertSource.run(src.path, src.nar, JSON.stringify(src.references));
    for (const row of rows) s.insertAttr.run(rowParams(crawl, t, row));
    for (const f of [...seenFods].sort()) s.insertSeen.run(crawl, t.system, t.variant, f);
    return added;
  };

  const writeSigs = db.transaction((crawl: number, t: Target, rows: AttrRow[]) => {
    for (const r of rows) s.setSig.run(r.sig, r.aliasOf, crawl, t.system, t.variant, r.path);
  });

  const finishTarget = db.transaction((crawl: number, t: Target, recompute: boolean) => {
    if (recompute) {
      s.clearSeen.run(crawl, t.system, t.variant);
      s.fillSeen.run({ crawl, system: t.system, variant: t.variant });
    }
    s.targetDone.run(crawl, t.system, t.variant);
  });

  const owner: Owner = currentOwner();

  return {
    /**
     * The unfinished crawl of this key (interrupted, failed, or running in a process that is
     * gone), taken over by this process to be resumed; null when there is none. One that a live
     * process runs is refused (CRAWL_RUNNING).
     */
    resumeUnfinished(key: string): number | null {
      // first without the write lock, which the running crawl may hold for seconds
      const live = unfinishedCrawl(db, key);
      const found =
        live !== null && live.status === 'running'
          ? live
          : db
              .transaction(() => {
                const c = unfinishedCrawl(db, key);
                if (c === null) return null;
                if (c.status === 'running') return c;
                s.claim.run({ ...owner, id: c.id });
                return c.id;
              })
              .immediate();
      if (found !== null && typeof found === 'object') {
        throw new FodderError(
          ErrorCode.CRAWL_RUNNING,
          `crawl ${found.id} (the same crawl) is running in process ${found.pid}${found.host ? ` on ${found.host}` : ''}: wait for it, or stop it (it is resumed by the next crawl)`,
          { crawl: found.id, pid: found.pid },
        );
      }
      return found;
    },
    /** A new crawl of `nixpkgs` (at git commit `revision`, or null for a plain path) and its targets. */
    createCrawl(key: string, nixpkgs: string, revision: string | null, params: unknown, mirrors: unknown, targets: (Target & { config: unknown })[]): number {
      return db.transaction(() => {
        const id = Number(
          s.insertCrawl.run(key, nixpkgs, revision, JSON.stringify(params), JSON.stringify(mirrors), new Date().toISOString(), owner).lastInsertRowid,
        );
        for (const t of targets) s.insertTarget.run(id, t.system, t.variant, JSON.stringify(t.config));
        return id;
      })();
    },
    targets(crawl: number) {
      return s.targets.all(crawl) as (Target & { done: number })[];
    },
    loadAttrs(crawl: number, t: Target): AttrRow[] {
      return (s.attrs.all(crawl, t.system, t.variant) as Record<string, unknown>[]).map(fromRow);
    },
    /**
     * Inserts a shard's records into the open write transaction (see begin), in key order;
     * returns how many derivations and FODs were new. Nothing is durable before commit.
     */
    insertShard(write: ShardWrite): { drvs: number; fods: number } {
      if (!db.inTransaction) throw new Error('insertShard outside a transaction');
      return insertShard(write);
    },
    /** Opens the write transaction shards are inserted into, unless one is open. */
    begin(): void {
      if (!db.inTransaction) db.exec('BEGIN');
    },
    /** Commits what was inserted since begin. */
    commit(): void {
      if (db.inTransaction) db.exec('COMMIT');
    },
    writeSigs(crawl: number, t: Target, rows: AttrRow[]): void {
      writeSigs(crawl, t, rows);
    },
    /**
     * Marks a target done. Each shard wrote the FODs of its closure to fod_seen with its rows;
     * with `recompute` (a target resumed from an earlier run, which may predate that) fod_seen
     * is filled again from the recorded graph, by a recursive query over drv_inputs.
     */
    finishTarget(crawl: number, t: Target, recompute: boolean): void {
      finishTarget(crawl, t, recompute);
    },
    finishCrawl(crawl: number, durationMs: number): void {
      s.finish.run(new Date().toISOString(), durationMs, crawl);
    },
  };
}

export type CrawlStore = ReturnType<typeof createCrawlStore>;

/**
 * Marks the crawls this process runs `interrupted` (a signal) or `failed` (an error), after
 * dropping what the open write transaction holds: shards that arrived since the last commit (at
 * most ten seconds of work) are evaluated again on resume, and a shard whose Nix died of the same
 * signal is never recorded. Returns their ids. Best effort: a database that fails here (damaged,
 * full) keeps them `running`, which a later reader shows as interrupted all the same.
 */
export function abandonCrawls(db: Db, status: 'interrupted' | 'failed'): number[] {
  try {
    if (db.inTransaction) db.exec('ROLLBACK');
    const me = currentOwner();
    const ids = db.prepare(`SELECT id FROM crawls WHERE status = 'running' AND pid = ? AND pid_start IS ?`).pluck().all(me.pid, me.start) as number[];
    const mark = db.prepare(`UPDATE crawls SET status = ?, finished_at = ? WHERE id = ?`);
    for (const id of ids) mark.run(status, new Date().toISOString(), id);
    return ids;
  } catch {
    return [];
  }
}

/** What a crawl's summary counts: attributes by status, and the distinct FODs its closures need. */
export function crawlCounts(db: Db, crawl: number): { byStatus: { status: string; n: number }[]; fods: number } {
  const byStatus = db.prepare(`SELECT status, COUNT(*) n FROM attrs WHERE crawl_id = ? GROUP BY status`).all(crawl) as { status: string; n: number }[];
  const fods = (db.prepare(`SELECT COUNT(DISTINCT drv_path) n FROM fod_seen WHERE crawl_id = ?`).get(crawl) as { n: number }).n;
  return { byStatus, fods };
}

/** How many derivations the closures of a crawl's derivation attributes hold (a recursive query over drv_inputs). */
export function closureSizeOf(db: Db, crawl: number): number {
  return (
    db
      .prepare(
        `
    WITH RECURSIVE c(p) AS (
      SELECT drv_path FROM attrs WHERE crawl_id = ? AND status = 'drv'
      UNION SELECT i.input_drv FROM drv_inputs i JOIN c ON i.drv_path = c.p)
    SELECT COUNT(*) n FROM c`,
      )
      .get(crawl) as { n: number }
  ).n;
}

/** An attrs row's values, in the column order of insertAttr. */
function rowParams(crawl: number, t: Target, r: AttrRow): unknown[] {
  return [
    crawl,
    t.system,
    t.variant,
    r.path,
    JSON.stringify(r.pathJson),
    r.parent,
    r.depth,
    r.status,
    r.drvPath,
    r.errorKind,
    r.error,
    r.reason,
    r.recurse ? 1 : 0,
    r.children ? JSON.stringify(r.children) : null,
    r.sig,
    r.aliasOf,
  ];
}

function fromRow(r: Record<string, unknown>): AttrRow {
  return {
    path: r.path as string,
    pathJson: JSON.parse(r.path_json as string) as string[],
    parent: (r.parent as string | null) ?? null,
    depth: r.depth as number,
    status: r.status as AttrRow['status'],
    drvPath: (r.drv_path as string | null) ?? null,
    errorKind: (r.error_kind as string | null) ?? null,
    error: (r.error as string | null) ?? null,
    reason: (r.reason as string | null) ?? null,
    recurse: r.recurse === 1,
    children: r.children_json ? (JSON.parse(r.children_json as string) as string[]) : null,
    sig: (r.sig as string | null) ?? null,
    aliasOf: (r.alias_of as string | null) ?? null,
  };
}
