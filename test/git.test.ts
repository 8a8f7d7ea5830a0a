/**
 * The `git` plug-in on the fixture set's git FODs: the repositories restored from their bundles
 * and served over git's dumb HTTP protocol by a plain static server (no shallow fetch there, so
 * nix-prefetch-git's full-fetch fallback is exercised) and as file:// repositories (the local
 * transport, where the shallow fetch of a rev works). Submodules come from the URL in
 * .gitmodules, which names the fixture host; git's insteadOf moves it to the test server.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createGitFetcher } from '../src/fetch/plugins/git.js';
import { fetchWithFallback } from '../src/fetch/fallback.js';
import type { Fod } from '../src/graph/types.js';
import {
  FIXTURE_HOST,
  crawlFixture,
  fixtureHashes,
  fodsWithEnv,
  movedTo,
  pluginHarness,
  startUpstream,
  type FodWithEnv,
  type PluginHarness,
  type Upstream,
} from './helpers/fixture-upstream.js';

let fods: FodWithEnv[];
let upstream: Upstream;
let h: PluginHarness;
const hashes = fixtureHashes();
const hex = (key: string) => hashes.get(key)!['nar-sha256-hex'];
const byName = (name: string) => fods.find((f) => f.fod.name === name)!;

let overHttp: ReturnType<typeof createGitFetcher>;
let overFile: ReturnType<typeof createGitFetcher>;

beforeAll(async () => {
  const crawl = await crawlFixture();
  fods = fodsWithEnv(crawl.dbFile);
  upstream = await startUpstream();
  h = pluginHarness();
  overHttp = createGitFetcher({ rewrites: [{ from: `http://${FIXTURE_HOST}/`, to: `http://127.0.0.1:${upstream.port}/` }] });
  overFile = createGitFetcher({ allowFile: true, rewrites: [{ from: `http://${FIXTURE_HOST}/`, to: `file://${upstream.dir}/` }] });
}, 300_000);

afterAll(async () => {
  await h?.close();
  await upstream?.close();
});

/** The FOD with a different declared hash and git options. */
function variant(f: FodWithEnv, git: Partial<NonNullable<Fod['git']>>, hashHex: string, env: Record<string, string> = {}): FodWithEnv {
  return { fod: { ...f.fod, git: { ...f.fod.git!, ...git }, hash: { ...f.fod.hash, hex: hashHex } }, env: { ...f.env, ...env } };
}

describe('every git FOD of the test set', () => {
  test('the fixture has the git FODs this test expects', () => {
    expect(
      fods
        .filter((f) => f.fod.kind === 'git')
        .map((f) => f.fod.name)
        .sort(),
    ).toEqual(['libgit-2f90906', 'withsub-19fd777']);
  });

  for (const name of ['libgit-2f90906', 'withsub-19fd777']) {
    for (const [transport, plugin] of [
      ['dumb HTTP', () => overHttp],
      ['file://', () => overFile],
    ] as const) {
      test(`${name} over ${transport}: the checkout without .git has the declared NAR hash`, async () => {
        const f = byName(name);
        const ctx = h.ctx(f.env, name);
        const v = await plugin().fetch(f.fod, ctx);
        expect(v).toMatchObject({ ok: true });
        if (!v.ok || v.output.type !== 'tree') throw new Error('no tree');
        expect(v.output.narHash).toBe(f.fod.hash.hex);
        expect(existsSync(join(v.output.path, '.git'))).toBe(false);
        if (name.startsWith('withsub')) {
          expect(existsSync(join(v.output.path, 'vendor/libgit/README'))).toBe(true); // the submodule's files
          expect(existsSync(join(v.output.path, 'vendor/libgit/.git'))).toBe(false);
        }
      });
    }
  }
});

describe('what nix-prefetch-git would do', () => {
  test('fetchSubmodules = false leaves an empty directory where the submodule goes', async () => {
    const f = variant(byName('withsub-19fd777'), { submodules: false }, hex('withsub-nosubmodules'));
    const v = await overHttp.fetch(f.fod, h.ctx(f.env, 'nosub'));
    expect(v).toMatchObject({ ok: true });
  });

  test('a tag as rev fetches the tagged commit', async () => {
    const f = variant(byName('libgit-2f90906'), { rev: 'refs/tags/v0.1.0' }, hex('libgit'));
    const v = await overFile.fetch(f.fod, h.ctx(f.env, 'tag'));
    expect(v).toMatchObject({ ok: true });
  });

  test('a rev that is not in the repository is dead', async () => {
    const f = variant(byName('libgit-2f90906'), { rev: '0123456789abcdef0123456789abcdef01234567' }, hex('libgit'));
    const v = await overHttp.fetch(f.fod, h.ctx(f.env, 'norev'));
    expect(v).toMatchObject({ ok: false, verdict: 'dead' });
  });

  test('a declared hash that the exact checkout does not have is a broken hash', async () => {
    const f = variant(byName('withsub-19fd777'), {}, hex('withsub-nosubmodules'));
    const v = await overHttp.fetch(f.fod, h.ctx(f.env, 'wrong'));
    expect(v).toMatchObject({ ok: false, verdict: 'broken-hash', mismatch: { actual: { algo: 'sha256', hex: hex('withsub') } } });
  });

  test('a repository that is gone is dead, with the git error recorded', async () => {
    const f = movedTo(byName('libgit-2f90906'), `127.0.0.1:${upstream.port}/nowhere`);
    const v = await createGitFetcher().fetch(f.fod, h.ctx(f.env, 'gone'));
    expect(v).toMatchObject({ ok: false, verdict: 'dead' });
    expect(h.attempts.some((a) => a.url === f.fod.git!.url && a.outcome === 'http-404')).toBe(true);
  });
});

describe('what fodder does not reproduce is unverifiable, never broken', () => {
  const cases: [string, Partial<NonNullable<Fod['git']>>, Record<string, string>, string][] = [
    ['leaveDotGit', { leaveDotGit: true }, {}, 'not-exact'],
    ['deepClone', { deepClone: true }, {}, 'not-exact'],
    ['fetchLFS', { lfs: true }, {}, 'not-exact'],
    ['sparse checkout', { sparseCheckout: ['src'] }, {}, 'not-exact'],
    ['a custom postFetch', {}, { postFetch: 'rm -r $out/src' }, 'custom-postFetch'],
    ['an ssh URL', { url: 'git@example.org:owner/repo.git' }, {}, 'not-exact'],
  ];
  for (const [what, git, env, reason] of cases) {
    test(what, async () => {
      const f = variant(byName('libgit-2f90906'), git, '00'.repeat(32), env);
      expect(overHttp.canFetch(f.fod, f.env).ok).toBe(false);
      const v = await fetchWithFallback(f.fod, h.ctx(f.env, 'inexact'), { native: { git: overHttp }, nix: null });
      expect(v.verdict).toMatchObject({ ok: false, verdict: 'unverifiable', reason });
    });
  }
});
