/**
 * Report benchmark: `buildReport` on a 40,000-derivation graph with 400 failing sources (the
 * graph of test/report.test.ts), against one plain read of the graph's edges from the same
 * database. The report walks the graph once per failing source, in memory, after reading it
 * once: the ratio says what the walks and the rest of the report cost on top of that read.
 *
 *   npm run bench:report [-- --rounds 5]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildReport } from '../src/report/build.js';
import { createTestCrawl } from '../test/helpers/fetch-db.js';
import { addReportGraph } from '../test/helpers/report-graph.js';
import { median } from './timed.js';

const i = process.argv.indexOf('--rounds');
const rounds = i >= 0 ? Number(process.argv[i + 1]) : 5;
const dir = mkdtempSync(join(tmpdir(), 'fodder-bench-report-'));
const c = createTestCrawl(join(dir, 'fodder.db'));
addReportGraph(c);

const ms = (f: () => void): number => {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
};
const read: number[] = [],
  report: number[] = [];
for (let r = 0; r < rounds; r++) {
  read.push(
    ms(() => {
      for (const _ of c.db.prepare(`SELECT drv_path, input_drv FROM drv_inputs`).raw().iterate()) {
        /* read only */
      }
    }),
  );
  let failing = 0;
  report.push(
    ms(() => {
      const rep = buildReport(c.db);
      failing = rep.dead.length + rep.brokenHashes.length;
    }),
  );
  if (failing !== 400) throw new Error(`the report lists ${failing} failing sources, not 400`);
}
c.close();
rmSync(dir, { recursive: true, force: true });
console.log(`median of ${rounds}: one read of the graph ${median(read).toFixed(0)} ms, the report ${median(report).toFixed(0)} ms`);
console.log(`RATIO report / one read of the graph: ${(median(report) / median(read)).toFixed(2)}`);
