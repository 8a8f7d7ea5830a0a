/**
 * The plug-in contract as the runner sees it: a plug-in gets the FOD's .drv environment, may
 * answer `unverifiable` (recorded, never reported as dead or broken), and may produce a tree.
 */
import { expect, test } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NETWORK_DEFAULTS } from '../src/fetch/network.js';
import { runFetch } from '../src/fetch/run.js';
import { unverifiable, type FetcherPlugin, type FodEnv } from '../src/fetch/types.js';
import { buildReport } from '../src/report/build.js';
import { createTestCrawl } from './helpers/fetch-db.js';

test('an unverifiable verdict is recorded with its reason and counted as unfetched, not dead; a tree is verified but not stored', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fodder-plugins-'));
  const c = createTestCrawl(join(dir, 'fodder.db'));
  const a = c.addFod({ name: 'judged-not', urls: ['https://example.invalid/a.git'], content: 'a', kind: 'git', mode: 'recursive' });
  const b = c.addFod({ name: 'a-tree', urls: ['https://example.invalid/b.git'], content: 'b', kind: 'git', mode: 'recursive' });
  c.db.prepare(`UPDATE fods SET env_json = ? WHERE drv_path = ?`).run(JSON.stringify({ leaveDotGit: '1' }), a);
  const seen: FodEnv[] = [];
  const stub: FetcherPlugin = {
    id: 'git',
    certainty: 'exact',
    canFetch: (_fod, env) => { seen.push(env); return { ok: true }; },
    async fetch(fod, ctx) {
      if (ctx.env.leaveDotGit) return unverifiable('not-exact', 'leaveDotGit is not reproducible');
      const out = join(ctx.workDir, 'out');
      mkdirSync(out);
      writeFileSync(join(out, 'file'), fod.name);
      return { ok: true, url: fod.resolvedUrls[0], urlIndex: 0, output: { type: 'tree', path: out, narHash: 'sha256:x', narSize: 1 } };
    },
  };
  const s = await runFetch({
    db: c.db, mirrorDir: join(dir, 'mirror'), kinds: ['git'], retryFailed: false, network: NETWORK_DEFAULTS, fetchers: { git: stub },
  });
  expect(seen).toEqual([{}, { leaveDotGit: '1' }]); // sorted by name: a-tree, judged-not
  expect(s.unverifiable).toEqual({ 'not-exact': 1 });
  expect([s.dead, s.brokenHash, s.mirrored, s.treesNotStored]).toEqual([0, 0, 0, 1]);
  const rows = c.db.prepare(`SELECT drv_path, verdict, reason, plugin FROM fetch_results ORDER BY drv_path`).all();
  expect(rows).toEqual(expect.arrayContaining([
    { drv_path: a, verdict: 'unverifiable', reason: 'not-exact', plugin: 'git' },
    { drv_path: b, verdict: 'ok', reason: null, plugin: 'git' },
  ]));
  const r = buildReport(c.db, { save: false });
  expect(r.summary).toMatchObject({ fods: 2, dead: 0, brokenHash: 0, unfetched: 2 });
  c.close();
});
