import type { Command } from 'commander';
import { resolveSettings } from '../../config/settings.js';
import { abortOnSignals } from '../common.js';
import { gcLine } from './gc.js';

interface ServeFlags {
  config?: string;
  listen?: string;
  db?: string;
  mirror?: string;
  schedule?: boolean;
}

const log = (line: string) => process.stderr.write(`fodder serve: ${line}\n`);

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve the mirror (hashed mirror and binary cache) and the answers over HTTP, and run crawl, fetch and report on a schedule and on request')
    .option('--config <file>', 'YAML config file (its service: section, and the crawl, fetch and cache keys the jobs use)')
    .option('--listen <host:port>', 'address to listen on (default 127.0.0.1:7480; port 0: any free port)')
    .option('--db <file>', 'database file')
    .option('--mirror <dir>', 'mirror directory (default data/mirror)')
    .option('--no-schedule', 'run jobs only on request (POST /api/jobs), not on service.schedule')
    .action(async (flags: ServeFlags) => {
      // loaded when used, so other commands start without the server and the pipeline
      const { startService } = await import('../../serve/service.js');
      const settings = resolveSettings({
        configFile: flags.config,
        flags: { listen: flags.listen, db: flags.db, mirror: flags.mirror, schedule: flags.schedule },
        need: { nixpkgs: true },
      });
      const service = await startService({
        settings,
        // each job runs in `fodder job`, this program started again (src/serve/jobs.ts)
        jobCommand: [process.execPath, ...process.execArgv, process.argv[1], 'job'],
        events: {
          jobStage: (id, stage) => log(`job ${id}: ${stage}`),
          jobFinished: (job) => log(`job ${job.id}: ${job.status}${job.error ? ` [${job.errorCode}]: ${job.error}` : ''}`),
          jobCollected: (id, result) => log(`job ${id}: gc ${gcLine(result)}`),
          problem: log,
        },
      });
      const next = service.nextRun();
      process.stdout.write(
        `fodder serve: listening on ${service.url} (mirror ${settings.mirror}, database ${settings.db}); ` +
          `${next ? `next scheduled job ${next.toISOString()}` : 'jobs on request only'}\n`,
      );
      if (service.resumed.length > 0) log(`taking up interrupted job${service.resumed.length > 1 ? 's' : ''} ${service.resumed.join(', ')}`);
      // a service stopped by SIGINT or SIGTERM ends cleanly: its running job is marked interrupted
      // (the next start takes it up) and it exits 0, as a service manager expects
      const stop = new AbortController();
      const release = abortOnSignals(stop);
      await new Promise<void>((r) => stop.signal.addEventListener('abort', () => r(), { once: true }));
      log(`stopping (${String(stop.signal.reason)})`);
      try {
        await service.stop(String(stop.signal.reason));
      } finally {
        release();
      }
    });
}
