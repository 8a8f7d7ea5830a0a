import type { Command } from 'commander';
import { openDb } from '../../db/open.js';
import { fetchSettings, type FetchFlags } from '../../fetch/options.js';
import { createFetchProgress, formatBytes, formatDuration } from '../../fetch/progress.js';
import { runFetch, type FetchSummary } from '../../fetch/run.js';
import { collect, isInteractive, positiveInt, printJson } from '../common.js';

function summaryText(s: FetchSummary): string {
  const unsupported = Object.entries(s.skipped.unsupported).map(([k, n]) => `${k} ${n}`).join(', ');
  const notFetchable = Object.entries(s.skipped.notFetchable).map(([k, n]) => `${n} (${k})`).join(', ');
  const unverifiable = Object.entries(s.unverifiable).map(([k, n]) => `${k} ${n}`).join(', ');
  const outcomes = Object.entries(s.outcomes).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
  return [
    `fetch run ${s.run} (crawl ${s.crawl}) into ${s.mirror}`,
    `  sources: ${s.fods}; mirrored now ${s.mirrored}, already mirrored ${s.alreadyMirrored}, dead ${s.dead}, broken hash ${s.brokenHash}`,
    unverifiable && `  tried but could not be judged (not a verdict on the source): ${unverifiable}`,
    unsupported && `  skipped, no fetcher for the kind yet: ${unsupported}`,
    notFetchable && `  skipped, out of the fetcher's reach: ${notFetchable}`,
    s.skipped.failedBefore && `  skipped, failed in an earlier run: ${s.skipped.failedBefore} (--retry-failed to try again)`,
    outcomes && `  tries: ${outcomes}`,
    `  ${formatBytes(s.bytes)} in ${formatDuration(s.durationMs / 1000)}; see \`fodder report\` for what is broken`,
  ].filter(Boolean).join('\n') + '\n';
}

export function registerFetch(program: Command): void {
  program
    .command('fetch')
    .description('download and hash-verify the sources of the latest crawl into the hashed mirror')
    .option('--config <file>', 'YAML config file (its fetch: section)')
    .option('--db <file>', 'database file')
    .option('--mirror <dir>', 'mirror directory (default data/mirror)')
    .option('--kind <kind>', 'only sources of this kind (repeatable)', collect)
    .option('--concurrency <n>', 'downloads at once', positiveInt('--concurrency'))
    .option('--per-host <n>', 'downloads at once from one host', positiveInt('--per-host'))
    .option('--retry-failed', 'try again sources whose last fetch failed')
    .option('--connect-timeout <secs>', 'connect timeout')
    .option('--idle-timeout <secs>', 'give up a try after this long without a byte')
    .option('--retries <n>', 'extra tries of a URL after a transient failure')
    .option('--retry-delay <secs>', 'first backoff before a retry (doubles each time)')
    .option('--max-size <MiB>', 'size cap of one download')
    .option('--json', 'print the summary as JSON')
    .option('--no-progress', 'no progress output')
    .action(async (flags: FetchFlags & { progress?: boolean }) => {
      const settings = fetchSettings(flags);
      const db = openDb(settings.db);
      const abort = new AbortController();
      const onSignal = () => abort.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const summary = await runFetch({
          db, mirrorDir: settings.mirror, kinds: settings.kinds, retryFailed: settings.retryFailed, network: settings.network,
          progress: flags.progress === false ? undefined : createFetchProgress(isInteractive()),
          signal: abort.signal,
        });
        if (flags.json) printJson(summary); else process.stdout.write(summaryText(summary));
        if (abort.signal.aborted) process.exitCode = 130;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        db.close();
      }
    });
}
