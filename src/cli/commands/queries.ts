import type { Command } from 'commander';
import { openDb } from '../../db/open.js';
import { chooseCrawl, finishedCrawlIds } from '../../db/crawls.js';
import { sourcesOf } from '../../query/sources.js';
import { listAttrs, listFods } from '../../query/listings.js';
import type { Fod } from '../../graph/types.js';
import { crawlLabel, dbPath, positiveInt, printJson, warnPartial } from '../common.js';
import { nixErrorHeadline } from '../../graph/nix-error.js';
import { printMissing, MISSING_OPTION, MIRROR_OPTION, type MissingFlags } from './missing.js';

function fodLine(f: Fod): string {
  const urls = f.kind === 'git' && f.git ? `${f.git.url}@${f.git.rev.slice(0, 12)}` : (f.urls[0] ?? '(no url)');
  return `  ${f.kind.padEnd(8)} ${f.name.padEnd(32)} ${f.hash.sri.slice(0, 30)}…  ${urls}${f.postFetch ? '  [postFetch]' : ''}`;
}

const CRAWL_OPTION = ['--crawl <n>', 'read this crawl (whatever its status) instead of the latest finished one'] as const;

export function registerQueries(program: Command): void {
  program
    .command('sources <attr>')
    .description('the FODs in the closure of ATTR, from the latest finished crawl that covered it')
    .option('--system <system>')
    .option('--variant <name>')
    .option(...CRAWL_OPTION, positiveInt('--crawl'))
    .option('--db <file>')
    .option(...MISSING_OPTION)
    .option(...MIRROR_OPTION)
    .option('--json')
    .action(async (attr: string, flags: { system?: string; variant?: string; crawl?: number; db?: string; json?: boolean } & MissingFlags) => {
      if (flags.missing || flags.mirror !== undefined) return printMissing({ ...flags, attr });
      const db = openDb(dbPath(flags.db), { readonly: true });
      let answer, crawl;
      try {
        answer = sourcesOf(db, attr, flags);
        crawl = chooseCrawl(db, answer.crawl);
      } finally {
        db.close();
      }
      const asked = flags.crawl !== undefined;
      if (flags.json) {
        if (asked) warnPartial(crawl);
        printJson(answer);
        return;
      }
      const from = asked ? crawlLabel(crawl, true) : `crawl ${crawl.id}, the latest finished that covered it`;
      process.stdout.write(`${answer.attr} (${answer.system}, ${answer.variant}; ${from}): ${answer.sources.length} sources\n`);
      process.stdout.write(answer.sources.map(fodLine).join('\n') + '\n');
    });

  program
    .command('fods')
    .description("every FOD the finished crawls recorded (or one crawl's), with the systems and variants it was seen in")
    .option('--system <system>')
    .option('--variant <name>')
    .option('--kind <kind>')
    .option(...CRAWL_OPTION, positiveInt('--crawl'))
    .option('--db <file>')
    .option(...MISSING_OPTION)
    .option(...MIRROR_OPTION)
    .option('--json')
    .action(async (flags: { system?: string; variant?: string; kind?: string; crawl?: number; db?: string; json?: boolean } & MissingFlags) => {
      if (flags.missing || flags.mirror !== undefined) return printMissing(flags);
      const db = openDb(dbPath(flags.db), { readonly: true });
      let fods, header: string;
      try {
        let crawls: number[];
        if (flags.crawl !== undefined) {
          const c = chooseCrawl(db, flags.crawl);
          if (flags.json) warnPartial(c);
          crawls = [c.id];
          header = `FODs of ${crawlLabel(c, true)}`;
        } else {
          crawls = finishedCrawlIds(db);
          if (crawls.length === 0) chooseCrawl(db); // says why there is nothing to read
          header = `FODs of the finished crawl${crawls.length > 1 ? 's' : ''} ${crawls.join(', ')}`;
        }
        fods = listFods(db, crawls, flags);
      } finally {
        db.close();
      }
      if (flags.json) {
        printJson(fods);
        return;
      }
      process.stdout.write(`${header}\n`);
      for (const f of fods) process.stdout.write(`${fodLine(f)}  (${f.systems.join(' ')}; ${f.variants.join(' ')})\n`);
      process.stdout.write(`${fods.length} fixed-output derivations\n`);
    });

  program
    .command('attrs')
    .description('attribute records of the latest finished crawl')
    .option('--status <status>', 'drv, set, error or skipped')
    .option('--system <system>')
    .option('--variant <name>')
    .option(...CRAWL_OPTION, positiveInt('--crawl'))
    .option('--db <file>')
    .option('--json')
    .action((flags: { status?: string; system?: string; variant?: string; crawl?: number; db?: string; json?: boolean }) => {
      const db = openDb(dbPath(flags.db), { readonly: true });
      let attrs, crawl;
      try {
        crawl = chooseCrawl(db, flags.crawl);
        attrs = listAttrs(db, crawl.id, flags);
      } finally {
        db.close();
      }
      if (flags.json) {
        warnPartial(crawl);
        printJson(attrs);
        return;
      }
      process.stdout.write(`attributes of ${crawlLabel(crawl, flags.crawl !== undefined)}\n`);
      for (const a of attrs) {
        const detail =
          a.status === 'drv'
            ? a.drvPath
            : a.status === 'error'
              ? `${a.errorKind}: ${nixErrorHeadline(a.error ?? '')}`
              : a.aliasOf
                ? `alias of ${a.aliasOf}`
                : (a.reason ?? '');
        process.stdout.write(`${a.system.padEnd(15)} ${a.variant.padEnd(11)} ${a.status.padEnd(7)} ${(a.path || '<root>').padEnd(40)} ${detail}\n`);
      }
      process.stdout.write(`${attrs.length} attributes\n`);
    });
}
