import type { Command } from 'commander';
import { resolveSettings } from '../../config/settings.js';
import { openDb } from '../../db/open.js';
import { ErrorCode, FodderError } from '../../errors.js';
import { abortOnSignals } from '../common.js';

interface JobFlags {
  id: string;
  config?: string;
  db?: string;
  mirror?: string;
}

/**
 * `fodder job --id N`: the service's own command, not one to type (hidden from --help). `fodder
 * serve` starts it for each job with an IPC channel (src/serve/jobs.ts) and the settings it
 * resolved (its --config, --db and --mirror); it runs the job, writes its row and its verdict,
 * and tells the service what happens. It exits 0 once the verdict is recorded, whatever it is.
 */
export function registerJob(program: Command): void {
  program
    .command('job', { hidden: true })
    .description("run one of the service's jobs (started by fodder serve, over its IPC channel)")
    .requiredOption('--id <n>', 'the job, a row of the jobs table')
    .option('--config <file>', 'YAML config file')
    .option('--db <file>', 'database file')
    .option('--mirror <dir>', 'mirror directory')
    .action(async (flags: JobFlags) => {
      const id = Number(flags.id);
      if (!Number.isSafeInteger(id) || id < 1) throw new FodderError(ErrorCode.USAGE, `--id ${flags.id}: not a job id`, { option: '--id' });
      const { runJobProcess } = await import('../../serve/job-process.js');
      const settings = resolveSettings({ configFile: flags.config, flags: { db: flags.db, mirror: flags.mirror }, need: { nixpkgs: true } });
      const stop = new AbortController();
      const release = abortOnSignals(stop);
      const db = openDb(settings.db);
      try {
        await runJobProcess({ db, settings, id, signal: stop.signal });
      } finally {
        db.close();
        release();
      }
    });
}
