import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Db } from '../db/open.js';
import { ensureFetchSchema } from '../db/fetch-schema.js';

/**
 * Makes `mirror_state` agree with the files: rows of this mirror whose file is gone (moved to
 * quarantine by `fodder verify`, or deleted by hand) are removed. Returns how many.
 */
export function forgetMissing(db: Db, mirrorRoot: string): number {
  ensureFetchSchema(db);
  const rows = db.prepare(`SELECT drv_path, path FROM mirror_state WHERE mirror_dir = ?`).all(mirrorRoot) as { drv_path: string; path: string }[];
  const gone = rows.filter((r) => !existsSync(join(mirrorRoot, r.path)));
  const del = db.prepare(`DELETE FROM mirror_state WHERE drv_path = ? AND mirror_dir = ?`);
  db.transaction(() => { for (const r of gone) del.run(r.drv_path, mirrorRoot); })();
  return gone.length;
}
