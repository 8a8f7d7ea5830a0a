import type { Command } from 'commander';
import { resolveSettings } from '../../config/settings.js';
import { crawl } from '../../eval/crawl.js';
import { parseAttrPath } from '../../eval/attr-path.js';
import { createProgress } from '../crawl-progress.js';
import { abortOnSignals, collect, isInteractive, positiveInt, printJson } from '../common.js';

interface CrawlFlags {
  config?: string;
  nixpkgs?: string;
  system?: string[];
  variant?: string[];
  attr?: string[];
  exhaustive?: boolean;
  workers?: number;
  store?: string;
  db?: string;
  json?: boolean;
  progress?: boolean;
}

export function registerCrawl(program: Command): void {
  program
    .command('crawl')
    .description('walk the package set across systems and config variants; record every FOD')
    .option('--config <file>', 'YAML config file')
    .option('--nixpkgs <path>', 'package set to crawl (default: the bundled test package set)')
    .option('--system <system>', 'crawl only this system (repeatable)', collect('--system'))
    .option('--variant <name>', 'crawl only this config variant (repeatable)', collect('--variant'))
    .option('--attr <path>', 'crawl only below this attribute path (repeatable)', collect('--attr'))
    .option('--exhaustive', 'descend into every attribute set, not only recurseForDerivations ones')
    .option('--workers <n>', 'worker threads (each with a long-lived Nix evaluator per target)', positiveInt('--workers'))
    .option('--store <dir>', 'also keep the .drv files in this directory, as a binary-cache store Nix reads (default: kept only in the database)')
    .option('--db <file>', 'database file', undefined)
    .option('--json', 'print the summary as JSON')
    .option('--no-progress', 'no progress output')
    .action(async (flags: CrawlFlags) => {
      const { crawl: config } = resolveSettings({
        configFile: flags.config,
        flags: {
          nixpkgs: flags.nixpkgs,
          systems: flags.system,
          variants: flags.variant,
          exhaustive: flags.exhaustive,
          workers: flags.workers,
          store: flags.store,
          db: flags.db,
        },
        need: { nixpkgs: true },
      });
      const attrs = flags.attr?.map(parseAttrPath);
      const progress = flags.progress === false ? undefined : createProgress(isInteractive());
      const stop = new AbortController();
      const release = abortOnSignals(stop);
      let summary;
      try {
        summary = await crawl({ config, attrs, progress, signal: stop.signal });
      } finally {
        release();
      }
      if (flags.json) {
        printJson(summary);
        return;
      }
      const a = summary.attrs;
      process.stdout.write(
        [
          `crawl ${summary.crawl}${summary.resumed ? ' (resumed)' : ''}: ${summary.systems.join(', ')} x ${summary.variants.join(', ')}`,
          `  attributes: ${a.total} (${a.drv} derivations, ${a.set} sets, ${a.error} errors, ${a.skipped} skipped)`,
          `  derivations in closures: ${summary.drvs}; fixed-output derivations: ${summary.fods}`,
          `  took ${(summary.durationMs / 1000).toFixed(1)}s with Nix ${summary.nix}; database: ${config.db}`,
          ...(a.error ? [`  what failed to evaluate, with Nix's messages: npx fodder attrs --status error${flags.db ? ` --db ${flags.db}` : ''}`] : []),
          '',
        ].join('\n'),
      );
    });
}
