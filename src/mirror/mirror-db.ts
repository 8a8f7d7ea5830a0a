import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Db } from '../db/open.js';
import { forgetMirrorState, mirrorStateOf } from '../db/fetch-store.js';

/**
 * Makes `mirror_state` agree with the files: rows of this mirror whose file is gone (moved to
 * quarantine by `fodder verify`, or deleted by hand) are removed. Returns how many.
 */
export function forgetMissing(db: Db, mirrorRoot: string): number {
  const gone = mirrorStateOf(db, mirrorRoot).filter((r) => !existsSync(join(mirrorRoot, r.path)));
  forgetMirrorState(
    db,
    mirrorRoot,
    gone.map((r) => r.drv_path),
  );
  return gone.length;
}
