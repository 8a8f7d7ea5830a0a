import type { Db } from './open.js';
import { ensureFetchSchema } from './fetch-schema.js';

/** What the FODs of some crawls need of a mirror (`fodder gc`, src/mirror/gc.ts). */
export interface NeededObjects {
  /** every FOD's declared hash: its file is `tarballs/<algo>/<hex>` */
  hashes: { algo: string; hex: string }[];
  /** every FOD's output path: its binary cache entry is `<hash>.narinfo` and the NAR file it names */
  outPaths: string[];
  /** the files `mirror_state` records for these FODs in this mirror, relative to it */
  mirrorPaths: string[];
}

/** What the FODs seen by these crawls (`fod_seen`) need of the mirror at `mirrorRoot`. */
export function neededObjects(db: Db, crawlIds: readonly number[], mirrorRoot: string): NeededObjects {
  ensureFetchSchema(db);
  const ids = JSON.stringify(crawlIds);
  const fods = db
    .prepare(
      `SELECT f.hash_algo AS algo, f.hash_hex AS hex, f.out_path AS outPath FROM fods f
    WHERE f.drv_path IN (SELECT s.drv_path FROM fod_seen s WHERE s.crawl_id IN (SELECT value FROM json_each(?)))`,
    )
    .all(ids) as { algo: string; hex: string; outPath: string }[];
  const mirrorPaths = db
    .prepare(
      `SELECT m.path FROM mirror_state m WHERE m.mirror_dir = ?
    AND m.drv_path IN (SELECT s.drv_path FROM fod_seen s WHERE s.crawl_id IN (SELECT value FROM json_each(?)))`,
    )
    .pluck()
    .all(mirrorRoot, ids) as string[];
  return { hashes: fods.map(({ algo, hex }) => ({ algo, hex })), outPaths: fods.map((f) => f.outPath), mirrorPaths };
}
