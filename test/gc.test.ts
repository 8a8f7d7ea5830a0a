/**
 * `fodder gc`: with two revisions' crawls and a mirror holding what both needed, keeping one
 * revision frees exactly what only the older crawl needed (its tarball under every name, its
 * narinfo and its NAR), and a dry run changes nothing.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { keptCrawlIds } from '../src/db/crawls.js';
import { NETWORK_DEFAULTS, type NetworkOptions } from '../src/fetch/network.js';
import { runFetch } from '../src/fetch/run.js';
import { collectGarbage } from '../src/mirror/gc.js';
import { verifyMirror } from '../src/mirror/verify.js';
import { narInfoFileName } from '../src/nix-formats/narinfo.js';
import { fodder, tempDir } from './helpers/cli.js';
import { createTestCrawl, FLAT_CACHE, type TestCrawl } from './helpers/fetch-db.js';
import { startStrings, type Running } from './helpers/servers.js';

const net: NetworkOptions = { ...NETWORK_DEFAULTS, connectTimeoutMs: 1000, idleTimeoutMs: 500, retries: 0, retryDelayMs: 10, maxRetryDelayMs: 20 };

/** Every file under `dir`, relative, with its size (the lock file and tmp/ aside). */
function listing(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'tmp') walk(p);
      } else if (e.name !== 'lock') out.set(relative(dir, p), statSync(p).size);
    }
  };
  walk(dir);
  return out;
}

describe('fodder gc', () => {
  const dir = tempDir('fodder-gc-');
  const mirrorDir = join(dir, 'mirror');
  const dbFile = join(dir, 'fodder.db');
  const content = { shared: 'in both revisions '.repeat(40), old: 'only in the old revision '.repeat(30), fresh: 'only in the new one '.repeat(20) };
  let server: Running;
  let crawl: TestCrawl;
  const out: Record<string, string> = {};
  const fetch = () => runFetch({ db: crawl.db, mirrorDir, kinds: ['url'], retryFailed: false, network: net, cache: FLAT_CACHE, nix: null });
  let before: Map<string, number>;

  beforeAll(async () => {
    server = await startStrings((path) => content[path.slice(1) as keyof typeof content]);
    crawl = createTestCrawl(dbFile);
    const addFod = (name: keyof typeof content) => {
      const drv = crawl.addFod({ name, urls: [server.url(`/${name}`)], content: content[name] });
      out[name] = crawl.db.prepare(`SELECT out_path FROM fods WHERE drv_path = ?`).pluck().get(drv) as string;
      return drv;
    };
    addFod('shared');
    const oldDrv = addFod('old');
    crawl.db.prepare(`UPDATE crawls SET revision = 'aaaa' WHERE id = ?`).run(crawl.crawlId);
    expect((await fetch()).mirrored).toBe(2);
    // the next revision: `old` is gone from the package set, `fresh` is new
    const second = crawl.newCrawl();
    crawl.db.prepare(`DELETE FROM fod_seen WHERE crawl_id = ? AND drv_path = ?`).run(second, oldDrv);
    crawl.db.prepare(`UPDATE crawls SET revision = 'bbbb' WHERE id = ?`).run(second);
    addFod('fresh');
    expect((await fetch()).mirrored).toBe(1);
    before = listing(mirrorDir);
  });
  afterAll(async () => {
    crawl?.close();
    await server?.close();
  });

  /** The files of the `old` source: its six tarball names, its narinfo and the NAR that names, and its narinfo in cache/flat/ (its NAR made from the tarball). */
  const oldFiles = () => {
    const narinfo = `cache/${narInfoFileName(out.old)}`;
    const url = /^URL: (\S+)$/m.exec(readFileSync(join(mirrorDir, narinfo), 'utf8'))![1];
    const inode = (p: string) => statSync(join(mirrorDir, p)).ino;
    const [stored] = [...before.keys()].filter((p) => p.startsWith('tarballs/sha256/') && before.get(p) === Buffer.byteLength(content.old));
    const tarballs = [...before.keys()].filter((p) => p.startsWith('tarballs/') && inode(p) === inode(stored));
    const flatNarinfo = `cache/flat/${narInfoFileName(out.old)}`;
    expect(before.has(flatNarinfo)).toBe(true);
    return { tarballs, narinfo, nar: `cache/${url}`, flatNarinfo };
  };

  test('which crawls a keep of 1 and of 2 revisions keep', () => {
    expect(keptCrawlIds(crawl.db, 1)).toEqual([2]);
    expect(keptCrawlIds(crawl.db, 2)).toEqual([1, 2]);
  });

  test('--dry-run says what keep 1 frees and changes nothing', async () => {
    const old = oldFiles();
    expect(old.tarballs).toHaveLength(6);
    const r = await fodder(['gc', '--mirror', mirrorDir, '--db', dbFile, '--keep', '1', '--dry-run', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as ReturnType<typeof collectGarbage>;
    expect(result).toMatchObject({ dryRun: true, keptCrawls: [2], tarballs: 1, tarballNames: 6, narinfos: 2, nars: 1, forgotten: 0 });
    expect(result.bytes).toBe(before.get(old.tarballs[0])! + before.get(old.narinfo)! + before.get(old.nar)! + before.get(old.flatNarinfo)!);
    expect(listing(mirrorDir)).toEqual(before);
    const text = await fodder(['gc', '--mirror', mirrorDir, '--db', dbFile, '--keep', '1', '--dry-run']);
    expect(text.stdout).toMatch(/^would free 4 files, .* \(1 tarballs, 2 narinfos, 1 NARs\)/);
  });

  test('keeping both revisions frees nothing', () => {
    const r = collectGarbage({ db: crawl.db, mirrorDir, keep: 2 });
    expect([r.tarballs, r.narinfos, r.nars, r.bytes]).toEqual([0, 0, 0, 0]);
    expect(listing(mirrorDir)).toEqual(before);
  });

  test('keep 1 frees exactly what only the old revision needed', async () => {
    const old = oldFiles();
    const r = collectGarbage({ db: crawl.db, mirrorDir, keep: 1 });
    expect(r).toMatchObject({ tarballs: 1, narinfos: 2, nars: 1, forgotten: 1 });
    const expected = new Map(before);
    for (const p of [...old.tarballs, old.narinfo, old.nar, old.flatNarinfo]) expected.delete(p);
    expect(listing(mirrorDir)).toEqual(expected);
    // what is left is whole: no alias to repair, nothing corrupt, every narinfo's NAR there
    const v = await verifyMirror(mirrorDir);
    expect([v.corrupt.length, v.repaired, v.narInfos, v.badNarInfos]).toEqual([0, 0, 2, []]);
    for (const name of ['shared', 'fresh']) {
      const url = /^URL: (\S+)$/m.exec(readFileSync(join(mirrorDir, 'cache', narInfoFileName(out[name])), 'utf8'))![1];
      expect(statSync(join(mirrorDir, 'cache', url)).isFile()).toBe(true);
    }
    // the kept crawl's sources are all still mirrored: a fetch has nothing to do
    const s = await fetch();
    expect([s.mirrored, s.alreadyMirrored]).toEqual([0, 2]);
    // and a second gc frees nothing more
    expect(collectGarbage({ db: crawl.db, mirrorDir, keep: 1 }).bytes).toBe(0);
  });

  test('without --keep or service.keep, gc is refused', async () => {
    const r = await fodder(['gc', '--mirror', mirrorDir, '--db', dbFile]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--keep N/);
  });
});
