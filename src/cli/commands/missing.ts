/** `--missing --mirror DIR|URL` of `fodder sources` and `fodder fods`: what a mirror lacks of the target. */
import { existsSync } from 'node:fs';
import { openDb } from '../../db/open.js';
import { recordedSizes } from '../../db/queries.js';
import { FodderError, ErrorCode } from '../../errors.js';
import { resolveSettings } from '../../config/settings.js';
import type { Target } from '../../query/targets.js';
import { formatBytes } from '../fetch-progress.js';
import { printJson } from '../common.js';

export const MISSING_OPTION = ['--missing', 'list only what the mirror (--mirror) lacks of these FODs, with sizes where known'] as const;
export const MIRROR_OPTION = ['--mirror <dir|url>', 'with --missing: a mirror directory, or a served one (`fodder serve`); default: fetch.mirror'] as const;

export interface MissingFlags {
  missing?: boolean;
  mirror?: string;
  db?: string;
  config?: string;
  json?: boolean;
}

/** Prints what the mirror lacks of the target `resolve` gives (the sizes a fetch recorded from the database, `--db` or the config's, when it has one). */
export async function printMissing(resolve: () => Promise<Target>, flags: MissingFlags): Promise<void> {
  if (!flags.missing) throw new FodderError(ErrorCode.USAGE, '--mirror is for --missing: pass --missing too', { option: '--mirror' });
  // a target evaluated now takes --config (and --db only with --missing): its db and fetch.mirror count too
  const settings = resolveSettings({ configFile: flags.config, flags: { db: flags.db } });
  const where = flags.mirror ?? settings.mirror;
  // loaded when asked (a served mirror's reader brings an HTTP client): not at every command's start
  const { isMirrorUrl, missingFrom, mirrorViewOf } = await import('../../query/missing.js');
  const view = await mirrorViewOf(where);
  if (!isMirrorUrl(where) && !existsSync(where)) {
    // an island's first season: nothing there yet; said, in case the path is mistyped
    process.stderr.write(`fodder: note: ${where} does not exist: counted as an empty mirror\n`);
  }
  const target = await resolve();
  const sizes = knownSizes(settings.db);
  const answer = await missingFrom(target.fods, view, sizes);
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

/** The sizes a fetch recorded on this database, or none when there is no database here (a target evaluated now, on a machine that never fetched). */
function knownSizes(file: string): Map<string, number> {
  if (!existsSync(file)) return new Map();
  const db = openDb(file, { readonly: true });
  try {
    return recordedSizes(db);
  } finally {
    db.close();
  }
}
