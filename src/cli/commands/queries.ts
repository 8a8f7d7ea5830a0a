import type { Command } from 'commander';
import { openDb } from '../../db/open.js';
import { chooseCrawl, finishedCrawlIds } from '../../db/crawls.js';
import { sourcesOf, type SourcesAnswer } from '../../query/sources.js';
import { attrSources, targetSources, type AttrSourcesAnswer, type SourceWithProvenance } from '../../query/targets.js';
import type { TargetSpec } from '../../eval/on-demand.js';
import { listAttrs, listFods } from '../../query/listings.js';
import type { Fod } from '../../graph/types.js';
import { abortOnSignals, crawlLabel, dbPath, positiveInt, printJson, warnPartial } from '../common.js';
import { addTargetOptions, chosenTarget, CRAWL_OPTION, onDemandOptions, resolveTarget, type TargetFlags } from './target-options.js';
import { nixErrorHeadline } from '../../graph/nix-error.js';
import { printMissing, MISSING_OPTION, MIRROR_OPTION, type MissingFlags } from './missing.js';

function fodLine(f: Fod): string {
  const urls = f.kind === 'git' && f.git ? `${f.git.url}@${f.git.rev.slice(0, 12)}` : (f.urls[0] ?? '(no url)');
  return `  ${f.kind.padEnd(8)} ${f.name.padEnd(32)} ${f.hash.sri.slice(0, 30)}…  ${urls}${f.postFetch ? '  [postFetch]' : ''}`;
}

type SourcesFlags = TargetFlags & MissingFlags;

function attrSourcesCommand(attr: string, flags: SourcesFlags): void {
  const db = openDb(dbPath(flags.db), { readonly: true });
  const several = (flags.system?.length ?? 0) > 1 || (flags.variant?.length ?? 0) > 1;
  let answer: SourcesAnswer | AttrSourcesAnswer, crawl;
  try {
    answer = several
      ? attrSources(db, attr, { systems: flags.system ?? [], variants: flags.variant ?? [], crawl: flags.crawl })
      : sourcesOf(db, attr, { system: flags.system?.[0], variant: flags.variant?.[0], crawl: flags.crawl });
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
  const where =
    'targets' in answer ? (answer as AttrSourcesAnswer).targets.map((t) => `${t.system}, ${t.variant}`).join('; ') : `${answer.system}, ${answer.variant}`;
  process.stdout.write(`${answer.attr} (${where}; ${from}): ${answer.sources.length} sources\n`);
  process.stdout.write(answer.sources.map((f) => fodLine(f) + ('targets' in f ? provenanceNote(f as SourceWithProvenance) : '')).join('\n') + '\n');
}

/** Where a source was found, after its line, when the answer covers several systems or variants. */
function provenanceNote(f: SourceWithProvenance): string {
  return `  (${f.targets.map((t) => (t.variant === null ? t.system : `${t.system}/${t.variant}`)).join(' ')})`;
}

async function targetSourcesCommand(target: TargetSpec, flags: SourcesFlags): Promise<void> {
  const stop = new AbortController();
  const release = abortOnSignals(stop);
  let answer;
  try {
    answer = await targetSources(target, onDemandOptions(flags, stop.signal));
  } finally {
    release();
  }
  for (const f of answer.failures) {
    const where = f.variant === null ? f.system : `${f.system}, ${f.variant}`;
    process.stderr.write(
      `fodder: warning: ${answer.target}: member ${JSON.stringify(f.name)} (${where}) skipped (${f.errorKind}): ${nixErrorHeadline(f.error)}\n`,
    );
  }
  if (flags.json) {
    printJson(answer);
    return;
  }
  const several = answer.systems.length > 1 || answer.variants.length > 1;
  const targets = answer.systems.join(', ') + (answer.variants.length ? `; ${answer.variants.join(', ')}` : '');
  const members = new Set(answer.members.map((m) => m.name)).size;
  process.stdout.write(
    `${answer.target} (${targets}; Nix ${answer.nix}): ${answer.sources.length} sources of ${members} derivation${members === 1 ? '' : 's'}\n`,
  );
  process.stdout.write(answer.sources.map((f) => fodLine(f) + (several ? provenanceNote(f) : '')).join('\n') + '\n');
}

export function registerQueries(program: Command): void {
  const sources = program
    .command('sources [attr]')
    .description('the FODs in the closure of ATTR (from the latest finished crawl that covered it), or of a target evaluated now');
  addTargetOptions(sources, 'YAML config (variants, overlays, nix.bin, limits) for a target evaluated now; with --missing also db (sizes), fetch.mirror')
    .option(...MISSING_OPTION)
    .option(...MIRROR_OPTION)
    .option('--json')
    .action(async (attr: string | undefined, flags: SourcesFlags) => {
      const choose = { command: 'sources', allowNone: false, configForAll: false };
      if (flags.missing || flags.mirror !== undefined) return printMissing(() => resolveTarget(attr, flags, { ...choose, dbForAll: true }), flags);
      const target = chosenTarget(attr, flags, choose);
      if (target === null) attrSourcesCommand(attr!, flags);
      else await targetSourcesCommand(target!, flags);
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
      if (flags.missing || flags.mirror !== undefined) {
        const query = { ...flags, system: flags.system === undefined ? [] : [flags.system], variant: flags.variant === undefined ? [] : [flags.variant] };
        return printMissing(() => resolveTarget(undefined, query, { command: 'fods', allowNone: true, configForAll: false }), flags);
      }
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
