import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { resolveSettings } from '../../config/settings.js';
import { openDb } from '../../db/open.js';
import { formatBytes, formatDuration } from '../fetch-progress.js';
import { forgetMissing } from '../../mirror/mirror-db.js';
import { isInteractive, printJson } from '../common.js';

interface VerifyFlags {
  config?: string;
  db?: string;
  mirror?: string;
  json?: boolean;
  progress?: boolean;
}

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('re-hash every file in the mirror; move corrupt ones to DIR/quarantine/ (exit 1 if any)')
    .option('--config <file>', 'YAML config file (its fetch: section)')
    .option('--db <file>', 'database to update (skipped when the file does not exist)')
    .option('--mirror <dir>', 'mirror directory (default data/mirror)')
    .option('--json', 'print the result as JSON')
    .option('--no-progress', 'no progress output')
    .action(async (flags: VerifyFlags) => {
      const settings = resolveSettings({ configFile: flags.config, flags: { db: flags.db, mirror: flags.mirror } });
      const interactive = isInteractive();
      let last = 0;
      const progress =
        flags.progress === false
          ? undefined
          : (done: number, total: number) => {
              const now = Date.now();
              if (done !== total && now - last < (interactive ? 200 : 5000)) return;
              last = now;
              process.stderr.write(interactive ? `\r\x1b[Kverify: ${done}/${total} files` : `verify: ${done}/${total} files\n`);
              if (interactive && done === total) process.stderr.write('\n');
            };
      const { verifyMirror } = await import('../../mirror/verify.js');
      const result = await verifyMirror(settings.mirror, progress);
      let forgotten = 0;
      if (existsSync(settings.db)) {
        const db = openDb(settings.db);
        try {
          forgotten = forgetMissing(db, result.mirror);
        } finally {
          db.close();
        }
      }
      if (flags.json) {
        printJson({ ...result, forgotten });
      } else {
        const lines = [
          `verified ${result.files} files (${result.names} names, ${formatBytes(result.bytes)}) in ${result.mirror} in ${formatDuration(result.durationMs / 1000)}`,
        ];
        for (const c of result.corrupt) lines.push(`  CORRUPT ${c.name}: content hashes to ${c.actual}; moved to ${c.movedTo}`);
        for (const n of result.badNarInfos) lines.push(`  BAD ${n.name}: ${n.reason}; moved to ${n.movedTo}`);
        if (result.narInfos) lines.push(`  checked ${result.narInfos} flat sources' narinfos against their files`);
        if (result.repaired) lines.push(`  re-made ${result.repaired} missing alias links`);
        if (result.foreign.length) lines.push(`  ${result.foreign.length} names that are not hashes were left alone (e.g. ${result.foreign[0]})`);
        if (forgotten) lines.push(`  the database no longer counts ${forgotten} sources as mirrored; \`fodder fetch\` will fetch them again`);
        const bad = [
          ...(result.corrupt.length ? [`${result.corrupt.length} corrupt names`] : []),
          ...(result.badNarInfos.length ? [`${result.badNarInfos.length} narinfos`] : []),
        ];
        lines.push(bad.length ? `${bad.join(' and ')} quarantined` : 'all good');
        process.stdout.write(lines.join('\n') + '\n');
      }
      if (result.corrupt.length || result.badNarInfos.length) process.exitCode = 1;
    });
}
