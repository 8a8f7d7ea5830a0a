/**
 * Re-classing the FODs a database recorded with an older classifier. A FOD's kind, its
 * `postFetch` flag, its git details and the environment kept for the fetchers all follow from
 * its .drv, which the database keeps (schema 3); a crawl never rewrites a FOD it has recorded,
 * so without this a better classifier would not reach a database made before it.
 */
// the connection's type from better-sqlite3 itself: open.ts runs this when it opens a database
import type { Database as Db } from 'better-sqlite3';
import { parseDrv } from '../nix-formats/drv-parse.js';
import { CLASSIFIER_VERSION, fodFromDrv, needsEnv } from '../graph/fod.js';

/**
 * When the database was classified by an older classifier (`meta.classifier`), classes every
 * FOD with a .drv text again and updates the rows that change; FODs without a text (recorded
 * before schema 3) keep what they have. Runs in one transaction; returns the rows changed.
 */
export function reclassifyFods(db: Db): number {
  const row = db.prepare(`SELECT value FROM meta WHERE key = 'classifier'`).get() as { value: string } | undefined;
  if (row?.value === String(CLASSIFIER_VERSION)) return 0;
  const rows = db.prepare(`
    SELECT f.drv_path, f.kind, f.post_fetch, f.git_json, f.env_json, f.resolved_urls_json, t.text
    FROM fods f JOIN drv_texts t ON t.drv_path = f.drv_path`);
  const update = db.prepare(`UPDATE fods SET kind = ?, post_fetch = ?, git_json = ?, env_json = ? WHERE drv_path = ?`);
  let changed = 0;
  db.transaction(() => {
    for (const r of rows.all() as { drv_path: string; kind: string; post_fetch: number; git_json: string | null; env_json: string; text: string }[]) {
      const drv = parseDrv(r.text, r.drv_path);
      // mirrors only resolve URLs, which are kept as the crawl resolved them
      const f = fodFromDrv(r.drv_path, drv, {});
      const next = {
        kind: f.kind,
        postFetch: f.postFetch ? 1 : 0,
        git: f.git ? JSON.stringify(f.git) : null,
        env: needsEnv(f) ? JSON.stringify(drv.env) : '{}',
      };
      if (next.kind === r.kind && next.postFetch === r.post_fetch && next.git === r.git_json && next.env === r.env_json) continue;
      update.run(next.kind, next.postFetch, next.git, next.env, r.drv_path);
      changed++;
    }
    db.prepare(`INSERT OR REPLACE INTO meta (key, value) VALUES ('classifier', ?)`).run(String(CLASSIFIER_VERSION));
  }).immediate();
  return changed;
}
