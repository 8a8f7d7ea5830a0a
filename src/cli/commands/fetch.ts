import type { Command } from 'commander';
import { chooseCrawl } from '../../db/crawls.js';
import { openDb } from '../../db/open.js';
import { createFetchProgress, formatBytes, formatDuration } from '../fetch-progress.js';
import type { FetchSummary } from '../../fetch/progress.js';
import { resolveSettings } from '../../config/settings.js';
import { abortOnSignals, collect, isInteractive, positiveInt, printJson } from '../common.js';
import { SIGNAL_EXIT } from '../failure.js';

/** The command line of `fodder fetch`, as commander hands it over. */
interface FetchFlags {
  config?: string;
  db?: string;
  mirror?: string;
  kind?: string[];
  concurrency?: number;
  perHost?: number;
  retryFailed?: boolean;
  json?: boolean;
  connectTimeout?: string;
  idleTimeout?: string;
  retries?: string;
  retryDelay?: string;
  maxSize?: string;
  signKey?: string;
  progress?: boolean;
  crawl?: number;
}

function summaryText(s: FetchSummary): string {
  const counts = (r: Record<string, number>) =>
    Object.entries(r)
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
  const unverifiable = counts(s.unverifiable);
  const by = counts(s.mirroredBy);
  const kinds = Object.entries(s.byKind)
    .filter(([, c]) => c.fods > 0)
    .map(
      ([kind, c]) =>
        `    ${kind.padEnd(8)} ${String(c.fods).padStart(6)} sources: ${c.mirrored + c.alreadyMirrored} mirrored (${c.mirrored} now), ` +
        `${c.dead} dead, ${c.brokenHash} broken, ${c.unverifiable} unverifiable${c.failedBefore ? `, ${c.failedBefore} failed before` : ''}`,
    );
  return (
    [
      `fetch run ${s.run} (crawl ${s.crawl}) into ${s.mirror}${s.nixFallback ? ', with the nix fallback' : ''}`,
      `  sources: ${s.fods}; mirrored now ${s.mirrored}${by ? ` (${by})` : ''}, already mirrored ${s.alreadyMirrored}, dead ${s.dead}, broken hash ${s.brokenHash}`,
      ...kinds,
      unverifiable && `  fodder could not judge (not a verdict on the source): ${unverifiable}`,
      s.skipped.failedBefore && `  skipped, failed in an earlier run: ${s.skipped.failedBefore} (--retry-failed to try again)`,
      `  binary cache ${s.cache}: ${s.published} entries written`,
      counts(s.outcomes) && `  tries: ${counts(s.outcomes)}`,
      `  ${formatBytes(s.bytes)} in ${formatDuration(s.durationMs / 1000)}; see \`fodder report\` for what is broken`,
    ]
      .filter(Boolean)
      .join('\n') + '\n'
  );
}

export function registerFetch(program: Command): void {
  program
    .command('fetch')
    .description('fetch and verify the sources of the latest crawl into the mirror: flat files in tarballs/, every output in the binary cache')
    .option('--config <file>', 'YAML config file (its fetch: section)')
    .option('--db <file>', 'database file')
    .option('--mirror <dir>', 'mirror directory (default data/mirror)')
    .option('--crawl <n>', 'fetch the sources of this crawl (whatever its status) instead of the latest finished one', positiveInt('--crawl'))
    .option('--kind <kind>', 'only sources of this kind (repeatable, or comma-separated); nix: the Nix fallback', collect('--kind'))
    .option('--concurrency <n>', 'downloads at once', positiveInt('--concurrency'))
    .option('--per-host <n>', 'downloads at once from one host', positiveInt('--per-host'))
    .option('--retry-failed', 'try again sources whose last fetch failed')
    .option('--connect-timeout <secs>', 'connect timeout')
    .option('--idle-timeout <secs>', 'give up a try after this long without a byte')
    .option('--retries <n>', 'extra tries of a URL after a transient failure')
    .option('--retry-delay <secs>', 'first backoff before a retry (doubles each time)')
    .option('--max-size <MiB>', 'size cap of one download')
    .option('--sign-key <file>', 'sign the binary cache with this Nix secret key (instead of fetch.cache.secretKeyFile)')
    .option('--json', 'print the summary as JSON')
    .option('--no-progress', 'no progress output')
    .action(async (flags: FetchFlags) => {
      // loaded when used, so other commands start without the fetch stack
      const { fetchRunSettings } = await import('../../fetch/options.js');
      const settings = resolveSettings({
        configFile: flags.config,
        flags: {
          db: flags.db,
          mirror: flags.mirror,
          kinds: flags.kind,
          concurrency: flags.concurrency,
          perHost: flags.perHost,
          connectTimeout: flags.connectTimeout,
          idleTimeout: flags.idleTimeout,
          retries: flags.retries,
          retryDelay: flags.retryDelay,
          maxSize: flags.maxSize,
          signKey: flags.signKey,
        },
      });
      const run = fetchRunSettings(settings.fetch);
      const db = openDb(settings.db);
      const abort = new AbortController();
      const release = abortOnSignals(abort);
      try {
        const { runFetch } = await import('../../fetch/run.js');
        const chosen = flags.crawl === undefined ? null : chooseCrawl(db, flags.crawl);
        if (chosen && chosen.status !== 'done') {
          process.stderr.write(`fodder: crawl ${chosen.id} is ${chosen.status}: fetching the sources it has recorded so far\n`);
        }
        const summary = await runFetch({
          db,
          crawl: flags.crawl,
          mirrorDir: settings.mirror,
          kinds: run.kinds,
          retryFailed: Boolean(flags.retryFailed),
          network: run.network,
          cache: run.cache,
          nix: run.nix,
          progress: flags.progress === false ? undefined : createFetchProgress(isInteractive()),
          signal: abort.signal,
        });
        if (flags.json) printJson(summary);
        else process.stdout.write(summaryText(summary));
        if (abort.signal.aborted) {
          const signal = String(abort.signal.reason);
          process.stderr.write(
            `fodder: error [INTERRUPTED]: fetch run ${summary.run} stopped by ${signal}, marked interrupted; ` +
              'run the same command to go on (partial downloads are resumed)\n',
          );
          process.exitCode = SIGNAL_EXIT[signal] ?? 130;
        }
      } finally {
        release();
        try {
          db.close();
        } catch {
          /* never hides why the run ended */
        }
      }
    });
}
