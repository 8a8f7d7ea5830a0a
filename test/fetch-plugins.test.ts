/**
 * The plug-in contract as the runner sees it: a plug-in gets the FOD's .drv environment, may
 * answer `unverifiable` (recorded, never reported as dead or broken), and may produce a tree,
 * which goes to the binary cache; the nix fallback takes what no native plug-in reproduces; a
 * FOD no plug-in reproduces is recorded `unverifiable` with the reason, never skipped silently.
 */
import { describe, expect, test } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NETWORK_DEFAULTS } from '../src/fetch/network.js';
import { runFetch } from '../src/fetch/run.js';
import { unverifiable, type FetcherPlugin, type FodEnv } from '../src/fetch/types.js';
import { narHash } from '../src/nix-formats/nar.js';
import { generateKeyPair, narInfoFingerprint, parseNarInfo, verifyNarInfoSig } from '../src/nix-formats/narinfo.js';
import { buildReport } from '../src/report/build.js';
import { createTestCrawl, FLAT_CACHE, hashHex, runSettings } from './helpers/fetch-db.js';

/** A directory holding one file; returns its NAR sha256 in hex. */
async function tree(dir: string, content: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'file'), content);
  return (await narHash(dir)).hex;
}

describe('the runner and its plug-ins', () => {
  test('an unverifiable verdict is recorded with its reason, never as dead; a tree goes to the binary cache', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fodder-plugins-'));
    const c = createTestCrawl(join(dir, 'fodder.db'));
    const a = c.addFod({ name: 'judged-not', urls: ['https://example.invalid/a.git'], content: 'a', kind: 'git', mode: 'recursive' });
    const treeHex = await tree(join(dir, 'expected'), 'the tree');
    const b = c.addFod({ name: 'a-tree', urls: ['https://example.invalid/b.git'], hex: treeHex, kind: 'git', mode: 'recursive' });
    c.db.prepare(`UPDATE fods SET env_json = ? WHERE drv_path = ?`).run(JSON.stringify({ leaveDotGit: '1' }), a);
    const seen: FodEnv[] = [];
    let fetched = 0;
    const stub: FetcherPlugin = {
      id: 'git',
      certainty: 'exact',
      canFetch: (_fod, env) => {
        seen.push(env);
        return { ok: true };
      },
      async fetch(fod, ctx) {
        fetched++;
        if (ctx.env.leaveDotGit) return unverifiable('not-exact', 'leaveDotGit is not reproducible');
        const out = join(ctx.workDir, 'out');
        const hex = await tree(out, 'the tree');
        return { ok: true, url: fod.resolvedUrls[0], urlIndex: 0, output: { type: 'tree', path: out, narHash: hex, narSize: 1 } };
      },
    };
    const fetch = () =>
      runFetch({
        db: c.db,
        mirrorDir: join(dir, 'mirror'),
        kinds: ['git'],
        retryFailed: false,
        network: NETWORK_DEFAULTS,
        fetchers: { git: stub },
        cache: FLAT_CACHE,
        nix: null,
      });
    const s = await fetch();
    expect(seen.slice(0, 2)).toEqual([{}, { leaveDotGit: '1' }]); // planned in name order: a-tree, judged-not
    expect(s.unverifiable).toEqual({ 'not-exact': 1 });
    expect([s.dead, s.brokenHash, s.mirrored, s.published]).toEqual([0, 0, 1, 1]);
    expect(s.mirroredBy).toEqual({ git: 1 });
    const rows = c.db.prepare(`SELECT drv_path, verdict, reason, plugin FROM fetch_results ORDER BY drv_path`).all();
    expect(rows).toEqual(
      expect.arrayContaining([
        { drv_path: a, verdict: 'unverifiable', reason: 'not-exact', plugin: 'git' },
        { drv_path: b, verdict: 'ok', reason: null, plugin: 'git' },
      ]),
    );
    const state = c.db.prepare(`SELECT path FROM mirror_state WHERE drv_path = ?`).pluck().get(b) as string;
    expect(state).toMatch(/^cache\/[0-9a-z]{32}\.narinfo$/);
    expect(existsSync(join(dir, 'mirror', state))).toBe(true);
    const r = buildReport(c.db, { save: false });
    expect(r.summary).toMatchObject({ fods: 2, mirrored: 1, dead: 0, brokenHash: 0, unverifiable: 1, unfetched: 0 });
    expect(r.unverifiable.map((e) => [e.fod.name, e.reason, e.plugin])).toEqual([['judged-not', 'not-exact', 'git']]);

    // again: the tree is in the cache (already mirrored); the one a plug-in tried and could not judge waits for --retry-failed
    fetched = 0;
    const again = await fetch();
    expect([again.alreadyMirrored, again.skipped.failedBefore, again.mirrored, fetched]).toEqual([1, 1, 0, 0]);
    c.close();
  });

  test('what no native plug-in reproduces goes to the nix fallback when it is on, and is unverifiable (no-fetcher) when it is off', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fodder-plugins-'));
    const c = createTestCrawl(join(dir, 'fodder.db'));
    const vendored = 'vendored dependencies\n';
    c.addFod({ name: 'app-vendor', urls: [], content: vendored, kind: 'vendor' });
    const off = await runFetch({
      db: c.db,
      mirrorDir: join(dir, 'mirror'),
      kinds: ['vendor'],
      retryFailed: false,
      network: NETWORK_DEFAULTS,
      cache: FLAT_CACHE,
      nix: null,
    });
    expect([off.unverifiable, off.skipped.failedBefore, off.nixFallback]).toEqual([{ 'no-fetcher': 1 }, 0, false]);
    const row = c.db.prepare(`SELECT verdict, reason, plugin FROM fetch_results`).get();
    expect(row).toEqual({ verdict: 'unverifiable', reason: 'no-fetcher', plugin: null });

    const nix: FetcherPlugin = {
      id: 'nix',
      certainty: 'exact',
      canFetch: () => ({ ok: true }),
      async fetch(fod, ctx) {
        const out = join(ctx.workDir, 'out');
        writeFileSync(out, vendored);
        const digests = {
          md5: hashHex('md5', vendored),
          sha1: hashHex('sha1', vendored),
          sha256: hashHex('sha256', vendored),
          sha512: hashHex('sha512', vendored),
        };
        return { ok: true, url: `nix:${fod.drvPath}`, urlIndex: 0, output: { type: 'file', path: out, size: vendored.length, digests } };
      },
    };
    // not "failed before": an unverifiable for want of a plug-in is decided again in every run
    const on = await runFetch({
      db: c.db,
      mirrorDir: join(dir, 'mirror'),
      kinds: ['vendor'],
      retryFailed: false,
      network: NETWORK_DEFAULTS,
      cache: FLAT_CACHE,
      nix: runSettings({ kinds: ['nix'] }).nix,
      nixFetcher: nix,
    });
    expect([on.mirrored, on.mirroredBy, on.published, on.nixFallback]).toEqual([1, { nix: 1 }, 1, true]);
    expect(existsSync(join(dir, 'mirror', 'tarballs', 'sha256', hashHex('sha256', vendored)))).toBe(true);
    expect(buildReport(c.db, { save: false }).summary).toMatchObject({ fods: 1, mirrored: 1, unverifiable: 0 });
    c.close();
  });

  test('a plug-in whose "verified" tree does not have the declared hash stops the run: nothing is published', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fodder-plugins-'));
    const c = createTestCrawl(join(dir, 'fodder.db'));
    const hex = await tree(join(dir, 'expected'), 'declared');
    c.addFod({ name: 'liar', urls: ['https://example.invalid/l.git'], hex, kind: 'git', mode: 'recursive' });
    const liar: FetcherPlugin = {
      id: 'git',
      certainty: 'exact',
      canFetch: () => ({ ok: true }),
      async fetch(fod, ctx) {
        const out = join(ctx.workDir, 'out');
        await tree(out, 'something else');
        return { ok: true, url: fod.resolvedUrls[0], urlIndex: 0, output: { type: 'tree', path: out, narHash: hex, narSize: 1 } };
      },
    };
    await expect(
      runFetch({
        db: c.db,
        mirrorDir: join(dir, 'mirror'),
        kinds: ['git'],
        retryFailed: false,
        network: NETWORK_DEFAULTS,
        fetchers: { git: liar },
        cache: FLAT_CACHE,
        nix: null,
      }),
    ).rejects.toMatchObject({ code: 'CACHE_HASH_MISMATCH' });
    const run = c.db.prepare(`SELECT status FROM fetch_runs`).pluck().get();
    expect(run).toBe('failed');
    expect(c.db.prepare(`SELECT COUNT(*) FROM mirror_state`).pluck().get()).toBe(0);
    c.close();
  });
});

describe('signing', () => {
  test('a fetch with a key signs what an unsigned run published, without fetching anything again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fodder-plugins-'));
    const c = createTestCrawl(join(dir, 'fodder.db'));
    const body = 'a flat source\n';
    c.addFod({ name: 'flat-1.0.tar.gz', urls: ['https://example.invalid/flat-1.0.tar.gz'], content: body });
    const hex = await tree(join(dir, 'expected'), 'a tree');
    c.addFod({ name: 'tree-source', urls: ['https://example.invalid/t.git'], hex, kind: 'git', mode: 'recursive' });
    let fetched = 0;
    const url: FetcherPlugin = {
      id: 'url',
      certainty: 'exact',
      canFetch: () => ({ ok: true }),
      async fetch(fod, ctx) {
        fetched++;
        const out = join(ctx.workDir, 'download');
        writeFileSync(out, body);
        const digests = { md5: hashHex('md5', body), sha1: hashHex('sha1', body), sha256: hashHex('sha256', body), sha512: hashHex('sha512', body) };
        return { ok: true, url: fod.resolvedUrls[0], urlIndex: 0, output: { type: 'file', path: out, size: body.length, digests } };
      },
    };
    const git: FetcherPlugin = {
      id: 'git',
      certainty: 'exact',
      canFetch: () => ({ ok: true }),
      async fetch(fod, ctx) {
        fetched++;
        const out = join(ctx.workDir, 'out');
        await tree(out, 'a tree');
        return { ok: true, url: fod.resolvedUrls[0], urlIndex: 0, output: { type: 'tree', path: out, narHash: hex, narSize: 1 } };
      },
    };
    const mirrorDir = join(dir, 'mirror');
    const fetch = (secretKey: string | null) =>
      runFetch({
        db: c.db,
        mirrorDir,
        kinds: ['url', 'git'],
        retryFailed: false,
        network: NETWORK_DEFAULTS,
        fetchers: { url, git },
        cache: { ...FLAT_CACHE, secretKey },
        nix: null,
      });
    const first = await fetch(null);
    expect([first.mirrored, first.published, fetched]).toEqual([2, 2, 2]);
    const keys = generateKeyPair('fodder-resign-1');
    const infos = () =>
      readdirSync(join(mirrorDir, 'cache'))
        .filter((n) => n.endsWith('.narinfo'))
        .map((n) => parseNarInfo(readFileSync(join(mirrorDir, 'cache', n), 'utf8')));
    expect(infos().map((i) => i.sigs)).toEqual([[], []]);
    const second = await fetch(keys.secretKey);
    expect([second.mirrored, second.alreadyMirrored, second.published, fetched]).toEqual([0, 2, 2, 2]);
    for (const i of infos()) {
      expect(i.sigs).toHaveLength(1);
      expect(verifyNarInfoSig(narInfoFingerprint(i), i.sigs[0], keys.publicKey)).toBe(true);
    }
    const third = await fetch(keys.secretKey);
    expect([third.alreadyMirrored, third.published]).toEqual([2, 0]);
    c.close();
  });
});
