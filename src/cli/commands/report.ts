import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { FodderError, ErrorCode } from '../../errors.js';
import { openDb } from '../../db/open.js';
import { buildReport } from '../../report/build.js';
import { renderHtml } from '../../report/render-html.js';
import { renderMarkdown } from '../../report/render-markdown.js';
import { renderText } from '../../report/render-text.js';
import { dbPath, positiveInt, warnPartial } from '../common.js';

const FORMATS = ['table', 'json', 'markdown', 'html'] as const;
type Format = (typeof FORMATS)[number];

interface ReportFlags {
  db?: string;
  format?: string;
  out?: string;
  save?: boolean;
  crawl?: number;
}

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('what is broken in the latest finished crawl: broken hashes, dead and rotting sources, sources fodder could not judge, evaluation errors')
    .option('--db <file>', 'database file')
    .option('--format <format>', `${FORMATS.join(', ')}`, 'table')
    .option('--out <file>', 'write to FILE instead of standard output')
    .option('--no-save', 'do not record this report (the next one compares with the one before)')
    .option(
      '--crawl <n>',
      'report on this crawl (whatever its status; not recorded unless finished) instead of the latest finished one',
      positiveInt('--crawl'),
    )
    .action((flags: ReportFlags) => {
      const format = (flags.format ?? 'table') as Format;
      if (!FORMATS.includes(format)) {
        throw new FodderError(ErrorCode.USAGE, `--format must be one of ${FORMATS.join(', ')}, got "${flags.format}"`, {
          option: '--format',
          value: flags.format,
        });
      }
      const db = openDb(dbPath(flags.db));
      let text: string;
      try {
        const report = buildReport(db, { save: flags.save !== false, crawl: flags.crawl });
        warnPartial(report.crawl);
        text =
          format === 'json'
            ? JSON.stringify(report, null, 2) + '\n'
            : format === 'markdown'
              ? renderMarkdown(report)
              : format === 'html'
                ? renderHtml(report)
                : renderText(report);
      } finally {
        db.close();
      }
      if (flags.out) writeFileSync(flags.out, text);
      else process.stdout.write(text);
    });
}
