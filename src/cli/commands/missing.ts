/** `--missing --mirror DIR|URL` of `fodder sources` and `fodder fods`: what a mirror lacks of the target. */
import { openDb } from '../../db/open.js';
import { recordedSizes } from '../../db/queries.js';
import { FodderError, ErrorCode } from '../../errors.js';
import { resolveSettings } from '../../config/settings.js';
import { missingFrom, mirrorViewOf } from '../../query/missing.js';
import { targetFods, type TargetSpec } from '../../query/targets.js';
import { formatBytes } from '../fetch-progress.js';
import { dbPath, printJson } from '../common.js';

export const MISSING_OPTION = ['--missing', 'list only what the mirror (--mirror) lacks of these FODs, with sizes where known'] as const;
export const MIRROR_OPTION = ['--mirror <dir|url>', 'with --missing: a mirror directory, or a served one (`fodder serve`); default: fetch.mirror'] as const;

export interface MissingFlags {
  missing?: boolean;
  mirror?: string;
  db?: string;
  json?: boolean;
}

export async function printMissing(flags: TargetSpec & MissingFlags): Promise<void> {
  if (!flags.missing) throw new FodderError(ErrorCode.USAGE, '--mirror is for --missing: pass --missing too', { option: '--mirror' });
  const where = flags.mirror ?? resolveSettings({ flags: { db: flags.db } }).mirror;
  const db = openDb(dbPath(flags.db), { readonly: true });
  let target, sizes;
  try {
    target = targetFods(db, flags);
    sizes = recordedSizes(db);
  } finally {
    db.close();
  }
  const answer = await missingFrom(target.fods, await mirrorViewOf(where), sizes);
  if (flags.json) {
    printJson({ target: target.label, ...answer });
    return;
  }
  const lines = [`${target.label}: what ${answer.mirror} lacks`];
  for (const m of answer.missing) {
    lines.push(`  ${m.fod.kind.padEnd(8)} ${m.fod.name.padEnd(32)} ${(m.size === null ? '?' : formatBytes(m.size)).padStart(10)}  ${m.fod.outPath}`);
  }
  lines.push(
    `have ${answer.have}, lack ${answer.lack} (${answer.unknownSize} of unknown size); ${formatBytes(answer.bytesToMove)} to move` +
      (answer.unknownSize ? ' and the unknown' : ''),
  );
  process.stdout.write(lines.join('\n') + '\n');
}
