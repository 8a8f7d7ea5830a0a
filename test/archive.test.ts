/**
 * The `archive` plug-in on the fixture set's own archive FODs, served on loopback: every plain
 * fetchzip/fetchFromGitHub reproduces its declared NAR hash; an upstream archive that changed
 * (same URL, new bytes) is a broken hash, while a merely re-compressed one is fine; a fetchzip
 * with a custom postFetch, or an archive fodder refuses to unpack, is unverifiable, never broken.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createArchiveFetcher } from '../src/fetch/plugins/archive.js';
import { archiveRecipe } from '../src/graph/archive-script.js';
import { fetchWithFallback } from '../src/fetch/fallback.js';
import type { FetcherPlugin } from '../src/fetch/types.js';
import { tarGz } from './helpers/archives.js';
import { tempDir } from './helpers/cli.js';
import {
  FIXTURE_ARCHIVES,
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

const LIBGH = 'github/fixture-org/libgh/archive/v1.2.0.tar.gz';
const archive = createArchiveFetcher({ limits: { maxBytes: 64 << 20, maxEntries: 10_000 } });
let fods: FodWithEnv[];
let upstream: Upstream;
let changed: Upstream;
let h: PluginHarness;
const hashes = fixtureHashes();

/** Re-packs the libgh tree: `edit` changes the content; with no edit only the archive bytes change. */
function repackLibgh(dir: string, edit: ((top: string) => void) | null, compressor: string[]): void {
  const t = tempDir('fodder-repack-');
  execFileSync('tar', ['-xzf', join(dir, LIBGH), '-C', t]);
  edit?.(join(t, 'libgh-1.2.0'));
  execFileSync('bash', ['-c', `tar --mtime=@999999 -cf - -C "${t}" libgh-1.2.0 | ${compressor.join(' ')} > "${join(dir, LIBGH)}"`]);
}

const byName = (name: string) => fods.find((f) => f.fod.name === name)!;
const at = (u: Upstream, name: string) => movedTo(byName(name), `127.0.0.1:${u.port}`);

beforeAll(async () => {
  const crawl = await crawlFixture();
  fods = fodsWithEnv(crawl.dbFile);
  upstream = await startUpstream();
  changed = await startUpstream({
    edit: (dir) => {
      repackLibgh(dir, (top) => writeFileSync(join(top, 'README'), 'libgh 1.2.0, re-tagged upstream with other content\n'), ['gzip', '-n']);
      // the unzipme release re-zipped with other timestamps and compression: the same tree
      execFileSync('bash', [
        '-c',
        `cd "${dir}/zips" && mkdir x && cd x && unzip -qq ../unzipme-0.3.zip && find . -exec touch -d 2001-01-01 {} + && rm ../unzipme-0.3.zip && zip -q -9 -r ../unzipme-0.3.zip unzipme-0.3 && cd .. && rm -r x`,
      ]);
      // the TeX Live package re-released with one more file, same URL
      execFileSync('bash', [
        '-c',
        `cd "${dir}/texlive" && mkdir x && cd x && tar xJf ../tl-alpha.tar.xz && echo new > texmf-dist/NEW && tar -cJf ../tl-alpha.tar.xz texmf-dist tlpkg && cd .. && rm -r x`,
      ]);
      // the flatpack archive now holds a path traversal
      writeFileSync(
        join(dir, 'flat', 'flatpack-1.0.tar.gz'),
        tarGz([
          { name: 'README', data: 'x' },
          { name: '../../escape', data: 'pwned' },
        ]),
      );
    },
  });
  h = pluginHarness();
}, 300_000);

afterAll(async () => {
  await h?.close();
  await upstream?.close();
  await changed?.close();
});

describe('every archive FOD of the test set', () => {
  test('the fixture has the archive FODs this test expects', () => {
    const names = fods
      .filter((f) => f.fod.kind === 'archive')
      .map((f) => f.fod.name)
      .sort();
    expect(names).toEqual(FIXTURE_ARCHIVES);
  });

  test("fetchzip's own postFetch is recognised in the shape of each nixpkgs version, with stripRoot and the renamed file", () => {
    const recipe = (n: string) => archiveRecipe(byName(n).env);
    const today = { count: 'all', pick: 'all', dotglob: false, move: 'rename', writable: true, chmodOut: true };
    expect(recipe('source')).toEqual({ ok: true, recipe: { type: 'fetchzip', shape: { fileName: 'v1.2.0.tar.gz', stripRoot: true, ...today } } });
    expect(recipe('unzipme-0.3-source')).toEqual({ ok: true, recipe: { type: 'fetchzip', shape: { fileName: 'unzipme-0.3.zip', stripRoot: true, ...today } } });
    expect(recipe('flatpack-1.0-source')).toEqual({
      ok: true,
      recipe: { type: 'fetchzip', shape: { fileName: 'flatpack-1.0.tar.gz', stripRoot: false, ...today, count: null } },
    });
    // 17.03: $out made first, the contents moved into it (dotglob); no chmod at all
    const y2017 = { pick: 'glob', dotglob: true, move: 'contents', writable: false, chmodOut: false };
    expect(recipe('oldgh-v0.9-src')).toEqual({
      ok: true,
      recipe: { type: 'fetchzip', shape: { fileName: 'v0.9.tar.gz', stripRoot: true, count: 'visible', ...y2017 } },
    });
    expect(recipe('oldflat-1.0-source')).toEqual({
      ok: true,
      recipe: { type: 'fetchzip', shape: { fileName: 'oldflat-1.0.zip', stripRoot: false, count: null, ...y2017 } },
    });
    // 2018-2022: hidden names neither counted nor taken
    expect(recipe('appledouble-1.1-source')).toEqual({
      ok: true,
      recipe: {
        type: 'fetchzip',
        shape: {
          fileName: 'appledouble-1.1.tar.gz',
          stripRoot: true,
          count: 'visible',
          pick: 'glob',
          dotglob: false,
          move: 'rename',
          writable: false,
          chmodOut: true,
        },
      },
    });
    expect(recipe('trimmed-2.0-source')).toMatchObject({ ok: false, custom: true });
  });

  test("TeX Live's tar into $out is recognised with its tar options", () => {
    const recipe = (n: string) => archiveRecipe(byName(n).env);
    expect(recipe('tl-alpha-1.0')).toEqual({ ok: true, recipe: { type: 'tar', shape: { stripComponents: 0, exclude: ['tlpkg'], keepOldFiles: true } } });
    expect(recipe('tl-beta-2.1')).toEqual({ ok: true, recipe: { type: 'tar', shape: { stripComponents: 1, exclude: ['tlpkg'], keepOldFiles: true } } });
  });

  /** FOD name -> its key in hashes.txt and the hash kind regen.sh recorded with the real tools */
  const PLAIN: Record<string, [string, string]> = {
    source: ['libgh', 'nar-sha256-hex'],
    'unzipme-0.3-source': ['unzipme', 'nar-sha256-hex'],
    'flatpack-1.0-source': ['flatpack', 'nar-sha256-hex'],
    'oldgh-v0.9-src': ['oldgh', 'nar-sha256-hex'],
    'oldflat-1.0-source': ['oldflat', 'nar-sha256-hex'],
    'appledouble-1.1-source': ['appledouble', 'nar-sha256-hex'],
    'tl-alpha-1.0': ['tl-alpha', 'nar-sha1-hex'],
    'tl-beta-2.1': ['tl-beta', 'nar-sha1-hex'],
  };
  for (const [name, [key, kind]] of Object.entries(PLAIN)) {
    test(`${name}: NAR hash of the unpacked download equals the declared hash`, async () => {
      const f = at(upstream, name);
      const v = await archive.fetch(f.fod, h.ctx(f.env, name));
      expect(v).toMatchObject({ ok: true, urlIndex: 0 });
      if (!v.ok || v.output.type !== 'tree') throw new Error('no tree');
      // and it is the hash regen.sh recorded with the real tools (in the declared algorithm)
      expect(f.fod.hash.hex).toBe(hashes.get(key)![kind]);
      if (f.fod.hash.algo === 'sha256') expect(v.output.narHash).toBe(f.fod.hash.hex);
      const sha256 = execFileSync('nix-hash', ['--type', 'sha256', v.output.path], { encoding: 'utf8' }).trim();
      expect(v.output.narHash).toBe(sha256);
    });
  }

  test('the fetchzip with a custom postFetch is unverifiable, not broken, and not even downloaded', async () => {
    const f = at(upstream, 'trimmed-2.0-source');
    expect(archive.canFetch(f.fod, f.env)).toMatchObject({ ok: false, code: 'custom-postFetch' });
    const before = upstream.hits.get('/custom/trimmed-2.0.tar.gz') ?? 0;
    const v = await fetchWithFallback(f.fod, h.ctx(f.env, 'trimmed'), { native: { archive }, nix: null });
    expect(v.verdict).toMatchObject({ ok: false, verdict: 'unverifiable', reason: 'custom-postFetch' });
    expect(upstream.hits.get('/custom/trimmed-2.0.tar.gz') ?? 0).toBe(before);
  });
});

describe('an upstream that changed', () => {
  /** The plug-in's verdict on `name` as the changed upstream serves it: it must be a broken hash. */
  async function brokenHash(name: string, label: string) {
    const f = at(changed, name);
    const v = await archive.fetch(f.fod, h.ctx(f.env, label));
    expect(v).toMatchObject({ ok: false, verdict: 'broken-hash' });
    if (v.ok || v.verdict !== 'broken-hash') throw new Error('not broken');
    return { f, v };
  }

  test('same URL, new content: a broken hash, with the hash of what upstream now serves', async () => {
    const { f, v } = await brokenHash('source', 'changed');
    const ref = tempDir('fodder-ref-');
    execFileSync('bash', ['-c', `cd "${ref}" && tar xzf "${join(changed.dir, LIBGH)}" && nix-hash --type sha256 libgh-1.2.0 > hash`]);
    const expected = execFileSync('cat', [join(ref, 'hash')], { encoding: 'utf8' }).trim();
    expect(v.mismatch).toEqual({ url: f.fod.resolvedUrls[0], urlIndex: 0, actual: { algo: 'sha256', hex: expected } });
    expect(v.message).toContain(expected);
  });

  test('a TeX Live package that changed upstream: a broken hash, with the recursive sha1 of what its tar command now makes', async () => {
    const { f, v } = await brokenHash('tl-alpha-1.0', 'tl-changed');
    const ref = tempDir('fodder-tl-ref-');
    execFileSync('tar', [
      '-xf',
      join(changed.dir, 'texlive/tl-alpha.tar.xz'),
      '--strip-components=0',
      '-C',
      ref,
      '--anchored',
      '--exclude=tlpkg',
      '--keep-old-files',
    ]);
    const expected = execFileSync('nix-hash', ['--type', 'sha1', ref], { encoding: 'utf8' }).trim();
    expect(v.mismatch).toEqual({ url: f.fod.resolvedUrls[0], urlIndex: 0, actual: { algo: 'sha1', hex: expected } });
  });

  test('a broken hash from the exact plug-in stands: the nix fallback is not asked', async () => {
    const f = at(changed, 'source');
    let asked = false;
    const nix: FetcherPlugin = {
      id: 'nix',
      certainty: 'exact',
      canFetch: () => ({ ok: true }),
      fetch: async () => {
        asked = true;
        throw new Error('must not run');
      },
    };
    const v = await fetchWithFallback(f.fod, h.ctx(f.env, 'changed-fallback'), { native: { archive }, nix });
    expect(v.verdict).toMatchObject({ verdict: 'broken-hash' });
    expect(v.by).toBe('archive');
    expect(asked).toBe(false);
  });

  test('same URL, same files in a different archive (other compression, times): still the declared hash', async () => {
    const f = at(changed, 'unzipme-0.3-source');
    const v = await archive.fetch(f.fod, h.ctx(f.env, 'rezipped'));
    expect(v).toMatchObject({ ok: true });
  });

  test('an archive fodder refuses to unpack is unverifiable, not broken, and nothing escapes', async () => {
    const f = at(changed, 'flatpack-1.0-source');
    const ctx = h.ctx(f.env, 'hostile');
    const v = await archive.fetch(f.fod, ctx);
    expect(v).toMatchObject({ ok: false, verdict: 'unverifiable', reason: 'unpack-refused' });
    expect(execFileSync('find', [join(ctx.workDir, '..'), '-name', 'escape'], { encoding: 'utf8' })).toBe('');
  });

  test('a dead URL is dead', async () => {
    const f = movedTo(byName('source'), `127.0.0.1:${upstream.port}/nothing-here`);
    const v = await archive.fetch(f.fod, h.ctx(f.env, 'dead'));
    expect(v).toMatchObject({ ok: false, verdict: 'dead' });
    expect(h.attempts.some((a) => a.url === f.fod.resolvedUrls[0] && a.outcome === 'http-404')).toBe(true);
  });

  test('stripRoot on an archive with several top-level entries: fetchzip fails too, so the source is broken', async () => {
    const server = await startUpstream({
      edit: (dir) =>
        writeFileSync(
          join(dir, LIBGH),
          tarGz([
            { name: 'a/x', data: 'a' },
            { name: 'b/y', data: 'b' },
          ]),
        ),
    });
    try {
      const f = at(server, 'source');
      const v = await archive.fetch(f.fod, h.ctx(f.env, 'multi'));
      expect(v).toMatchObject({ ok: false, verdict: 'broken-hash', mismatch: null });
      if (!v.ok) expect(v.message).toMatch(/top-level entries/);
    } finally {
      await server.close();
    }
  });
});
