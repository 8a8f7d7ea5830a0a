/**
 * What carries over between fetch runs and crawls: skipping what the mirror holds, not
 * retrying known failures unless asked, "dead since" and "broken since", and `verify`.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chmodSync, existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NETWORK_DEFAULTS, type NetworkOptions } from '../src/fetch/network.js';
import { runFetch } from '../src/fetch/run.js';
import { verifyMirror } from '../src/mirror/verify.js';
import { forgetMissing } from '../src/mirror/mirror-db.js';
import { buildReport } from '../src/report/build.js';
import { createTestCrawl, FLAT_CACHE, hashHex, type TestCrawl } from './helpers/fetch-db.js';
import { startHttp, type Running } from './helpers/servers.js';

const net: NetworkOptions = { ...NETWORK_DEFAULTS, connectTimeoutMs: 1000, idleTimeoutMs: 500, retries: 1, retryDelayMs: 10, maxRetryDelayMs: 20 };

describe('history across runs and crawls', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fodder-runs-'));
  const mirrorDir = join(dir, 'mirror');
  let server: Running;
  let crawl: TestCrawl;
  const requests: string[] = [];
  let comeBack = false;
  let fixUpstream = false;
  const good = Buffer.from('good content '.repeat(100));
  const later = Buffer.from('a file that comes back '.repeat(50));
  const drv: Record<string, string> = {};
  const fetch = (retryFailed = false) => runFetch({ db: crawl.db, mirrorDir, kinds: ['url'], retryFailed, network: net, cache: FLAT_CACHE, nix: null });

  beforeAll(async () => {
    server = await startHttp((req, res) => {
      requests.push(req.url ?? '');
      if (req.url === '/good') {
        res.writeHead(200, { 'content-length': good.length });
        res.end(good);
        return;
      }
      if (req.url === '/later' && comeBack) {
        res.writeHead(200, { 'content-length': later.length });
        res.end(later);
        return;
      }
      if (req.url === '/changed') {
        res.end(fixUpstream ? 'the declared content' : 'upstream replaced the file');
        return;
      }
      res.writeHead(404);
      res.end();
    });
    crawl = createTestCrawl(join(dir, 'fodder.db'));
    drv.good = crawl.addFod({ name: 'good', urls: [server.url('/good')], content: good });
    drv.later = crawl.addFod({ name: 'later', urls: [server.url('/later')], content: later });
    drv.changed = crawl.addFod({ name: 'changed', urls: [server.url('/changed')], content: 'the declared content' });
    drv.dead = crawl.addFod({ name: 'dead', urls: [server.url('/dead')], content: 'never' });
    const app = crawl.addDrv('app', [drv.good, drv.dead], 'app');
    crawl.addDrv('bundle', [app], 'bundle');
    crawl.addEvalError('broken-attr', 'error: assertion failed');
  });
  afterAll(async () => {
    crawl?.close();
    await server?.close();
  });

  test('first run: one mirrored, one broken, two dead', async () => {
    const s = await fetch();
    expect([s.mirrored, s.brokenHash, s.dead]).toEqual([1, 1, 2]);
  });

  test('an already mirrored source is skipped without a request', async () => {
    requests.length = 0;
    const s = await fetch();
    expect(s.alreadyMirrored).toBe(1);
    expect(s.skipped.failedBefore).toBe(3);
    expect(requests).toEqual([]);
  });

  test('the report names the attributes that need a source, directly and in total', () => {
    const r = buildReport(crawl.db);
    const dead = r.dead.find((e) => e.fod.name === 'dead')!;
    expect(dead.attrs).toEqual({ direct: ['app'], total: 2, indirect: ['bundle'], indirectTruncated: false });
    expect(r.evalErrors).toEqual([
      { attr: 'broken-attr', system: 'x86_64-linux', variant: 'default', message: 'error: assertion failed', kind: 'catchable', new: true },
    ]);
    expect(r.dead.every((e) => e.new)).toBe(true);
    expect(r.previousReport).toBeNull();
  });

  test('--retry-failed tries them again; the "since" of what is still failing stays the first failure', async () => {
    const first = buildReport(crawl.db, { save: false });
    const deadSince = first.dead.find((e) => e.fod.name === 'dead')!.since;
    const brokenSince = first.brokenHashes[0].since;
    crawl.newCrawl();
    comeBack = true;
    const s = await fetch(true);
    expect([s.mirrored, s.brokenHash, s.dead]).toEqual([1, 1, 1]);
    const r = buildReport(crawl.db);
    expect(r.crawl.id).toBe(2);
    expect(r.dead.map((e) => e.fod.name)).toEqual(['dead']);
    expect(r.dead[0].since).toBe(deadSince);
    expect(r.dead[0].lastTried > deadSince).toBe(true);
    expect(r.brokenHashes[0].since).toBe(brokenSince);
    // the previous report listed them: not new any more
    expect(r.dead[0].new).toBe(false);
    expect(r.brokenHashes[0].new).toBe(false);
    expect(r.previousReport).not.toBeNull();
    const attempts = crawl.db.prepare(`SELECT run_id, outcome FROM fetch_attempts WHERE drv_path = ? ORDER BY id`).all(drv.dead);
    expect(attempts).toEqual([
      { run_id: 1, outcome: 'http-404' },
      { run_id: 3, outcome: 'http-404' },
    ]);
  });

  test('a source whose upstream is fixed leaves the broken list', async () => {
    fixUpstream = true;
    await fetch(true);
    const r = buildReport(crawl.db, { save: false });
    expect(r.brokenHashes).toEqual([]);
    expect(r.summary).toMatchObject({ fods: 4, mirrored: 3, dead: 1, brokenHash: 0 });
  });

  test('verify moves a corrupt file aside, the database forgets it, and the next fetch restores it', async () => {
    const path = join(mirrorDir, 'tarballs', 'sha256', hashHex('sha256', good));
    chmodSync(path, 0o644);
    writeFileSync(path, 'bit rot'); // same inode: every alias is corrupt now
    const v = await verifyMirror(mirrorDir);
    expect(v.corrupt.length).toBe(6);
    expect(v.corrupt.every((c) => c.movedTo.startsWith('quarantine/'))).toBe(true);
    expect(existsSync(path)).toBe(false);
    expect(forgetMissing(crawl.db, v.mirror)).toBe(1);
    expect(buildReport(crawl.db, { save: false }).summary.mirrored).toBe(2);
    const s = await fetch();
    expect(s.mirrored).toBe(1);
    expect((await verifyMirror(mirrorDir)).corrupt).toEqual([]);
    expect(readdirSync(join(mirrorDir, 'quarantine')).length).toBe(1);
  });

  test('verify puts back a missing alias of a good file', async () => {
    const alias = join(mirrorDir, 'tarballs', 'md5', hashHex('md5', later));
    const { rmSync } = await import('node:fs');
    rmSync(alias);
    const v = await verifyMirror(mirrorDir);
    expect(v.repaired).toBe(1);
    expect(existsSync(alias)).toBe(true);
  });
});
