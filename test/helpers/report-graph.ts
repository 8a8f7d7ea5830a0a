/**
 * A large derivation graph for the report: 2,000 sources, 19 layers of 2,000 derivations above
 * them (each depending on three below it, every third layer an attribute), 400 of the sources
 * failing. Used by report.test.ts and bench/report.ts.
 */
import { createFetchStore } from '../../src/db/fetch-store.js';
import type { TestCrawl } from './fetch-db.js';

export interface ReportGraph {
  fods: string[];
  /** the FODs of a failing fetch */
  failing: string[];
  /** each derivation's direct users (input -> the derivations that depend on it) */
  users: Map<string, string[]>;
  /** the attribute that evaluates to a derivation, if any */
  attrOf: Map<string, string>;
}

export function addReportGraph(c: TestCrawl): ReportGraph {
  const store = createFetchStore(c.db);
  const run = store.beginRun(c.crawlId, '/m', {});
  const fods: string[] = [];
  const failing: string[] = [];
  const users = new Map<string, string[]>();
  const attrOf = new Map<string, string>();
  c.db.transaction(() => {
    for (let i = 0; i < 2000; i++) fods.push(c.addFod({ name: `src-${i}.tar.gz`, urls: [`https://e.example/${i}`], hex: i.toString(16).padStart(64, '0') }));
    // layered graph: each derivation depends on a few below it; the bottom layer on the sources
    const layer: string[][] = [fods];
    for (let l = 1; l <= 19; l++) {
      const prev = layer[l - 1];
      const cur: string[] = [];
      for (let i = 0; i < 2000; i++) {
        const inputs = [prev[i], prev[(i * 7 + 3) % prev.length], prev[(i * 13 + 5) % prev.length]];
        const attr = l % 3 === 0 ? `pkgs.l${l}.p${i}` : undefined;
        const drv = c.addDrv(`pkg-${l}-${i}`, inputs, attr);
        for (const input of new Set(inputs)) (users.get(input) ?? users.set(input, []).get(input)!).push(drv);
        if (attr) attrOf.set(drv, attr);
        cur.push(drv);
      }
      layer.push(cur);
    }
    for (let i = 0; i < 400; i++) {
      failing.push(fods[i * 5]);
      store.result(run, {
        drvPath: fods[i * 5],
        verdict: i % 4 ? 'dead' : 'broken-hash',
        url: null,
        urlIndex: null,
        actual: i % 4 ? null : { algo: 'sha256', hex: 'ee'.repeat(32) },
      });
    }
    store.flush();
  })();
  return { fods, failing, users, attrOf };
}

/** How many attributes need `drv`: a plain walk up the graph, to check the report's count against. */
export function attrsNeeding(g: ReportGraph, drv: string): number {
  const seen = new Set([drv]);
  const todo = [drv];
  const attrs = new Set<string>();
  while (todo.length) {
    const d = todo.pop()!;
    const a = g.attrOf.get(d);
    if (a) attrs.add(a);
    for (const u of g.users.get(d) ?? [])
      if (!seen.has(u)) {
        seen.add(u);
        todo.push(u);
      }
  }
  return attrs.size;
}
