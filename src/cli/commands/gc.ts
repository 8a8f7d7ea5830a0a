import type { Command } from 'commander';
import { resolveSettings } from '../../config/settings.js';
import { openDb } from '../../db/open.js';
import { ErrorCode, FodderError } from '../../errors.js';
import type { GcResult } from '../../mirror/gc.js';
import { formatBytes } from '../fetch-progress.js';
import { printJson } from '../common.js';

interface GcFlags {
  config?: string;
  db?: string;
  mirror?: string;
  keep?: string;
  dryRun?: boolean;
  json?: boolean;
}

/** What gc freed (or would free), in one line. */
export function gcLine(r: GcResult): string {
  const files = r.tarballs + r.narinfos + r.nars;
  return (
    `${r.dryRun ? 'would free' : 'freed'} ${files} files, ${formatBytes(r.bytes)} (${r.tarballs} tarballs, ${r.narinfos} narinfos, ${r.nars} NARs)` +
    ` in ${r.mirror}; kept what crawl${r.keptCrawls.length === 1 ? '' : 's'} ${r.keptCrawls.join(', ') || '(none)'} need`
  );
}

export function registerGc(program: Command): void {
  program
    .command('gc')
    .description('remove the mirror objects (tarballs, narinfos, NARs) that no crawl of the newest N revisions needs, and print what it frees')
    .option('--config <file>', 'YAML config file (its service.keep, db and fetch.mirror)')
    .option('--db <file>', 'database file')
    .option('--mirror <dir>', 'mirror directory (default data/mirror)')
    .option('--keep <n>', 'revisions of the package set whose crawls are kept (default service.keep)')
    .option('--dry-run', 'say what would be removed, remove nothing')
    .option('--json', 'print the result as JSON')
    .action(async (flags: GcFlags) => {
      const settings = resolveSettings({ configFile: flags.config, flags: { db: flags.db, mirror: flags.mirror, keep: flags.keep } });
      const keep = settings.service.keep;
      if (keep === null) {
        throw new FodderError(ErrorCode.USAGE, 'how many revisions to keep: pass --keep N (or set service.keep in the config)');
      }
      const { collectGarbage } = await import('../../mirror/gc.js');
      const db = openDb(settings.db);
      let result: GcResult;
      try {
        result = collectGarbage({ db, mirrorDir: settings.mirror, keep, dryRun: flags.dryRun ?? false });
      } finally {
        db.close();
      }
      if (flags.json) printJson(result);
      else process.stdout.write(`${gcLine(result)}\n`);
    });
}
