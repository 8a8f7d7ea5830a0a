import type { Command } from 'commander';
import { openDb } from '../../db/open.js';
import { sourcesOf } from '../../query/sources.js';
import { listAttrs, listFods } from '../../query/listings.js';
import type { Fod } from '../../graph/types.js';
import { dbPath, printJson } from '../common.js';
import { nixErrorHeadline } from '../../graph/nix-error.js';

function fodLine(f: Fod): string {
  const urls = f.kind === 'git' && f.git ? `${f.git.url}@${f.git.rev.slice(0, 12)}` : f.urls[0] ?? '(no url)';
  return `  ${f.kind.padEnd(8)} ${f.name.padEnd(32)} ${f.hash.sri.slice(0, 30)}…  ${urls}${f.postFetch ? '  [postFetch]' : ''}`;
}

export function registerQueries(program: Command): void {
  program
    .command('sources <attr>')
    .description('the FODs in the closure of ATTR, from the latest crawl that covered it')
    .option('--system <system>').option('--variant <name>').option('--db <file>').option('--json')
    .action((attr: string, flags: { system?: string; variant?: string; db?: string; json?: boolean }) => {
      const db = openDb(dbPath(flags.db), { readonly: true });
      const answer = sourcesOf(db, attr, flags);
      db.close();
      if (flags.json) { printJson(answer); return; }
      process.stdout.write(`${answer.attr} (${answer.system}, ${answer.variant}, crawl ${answer.crawl}): ${answer.sources.length} sources\n`);
      process.stdout.write(answer.sources.map(fodLine).join('\n') + '\n');
    });

  program
    .command('fods')
    .description('every FOD recorded, with the systems and variants it was seen in')
    .option('--system <system>').option('--variant <name>').option('--kind <kind>').option('--db <file>').option('--json')
    .action((flags: { system?: string; variant?: string; kind?: string; db?: string; json?: boolean }) => {
      const db = openDb(dbPath(flags.db), { readonly: true });
      const fods = listFods(db, flags);
      db.close();
      if (flags.json) { printJson(fods); return; }
      for (const f of fods) process.stdout.write(`${fodLine(f)}  (${f.systems.join(' ')}; ${f.variants.join(' ')})\n`);
      process.stdout.write(`${fods.length} fixed-output derivations\n`);
    });

  program
    .command('attrs')
    .description('attribute records of the latest crawl')
    .option('--status <status>', 'drv, set, error or skipped').option('--system <system>').option('--variant <name>')
    .option('--db <file>').option('--json')
    .action((flags: { status?: string; system?: string; variant?: string; db?: string; json?: boolean }) => {
      const db = openDb(dbPath(flags.db), { readonly: true });
      const attrs = listAttrs(db, flags);
      db.close();
      if (flags.json) { printJson(attrs); return; }
      for (const a of attrs) {
        const detail = a.status === 'drv' ? a.drvPath : a.status === 'error' ? `${a.errorKind}: ${nixErrorHeadline(a.error ?? '')}`
          : a.aliasOf ? `alias of ${a.aliasOf}` : a.reason ?? '';
        process.stdout.write(`${a.system.padEnd(15)} ${a.variant.padEnd(11)} ${a.status.padEnd(7)} ${(a.path || '<root>').padEnd(40)} ${detail}\n`);
      }
      process.stdout.write(`${attrs.length} attributes\n`);
    });
}
