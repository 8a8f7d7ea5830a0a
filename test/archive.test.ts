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
import { createArchiveFetcher, fetchzipShape } from '../src/fetch/plugins/archive.js';
import { fetchWithFallback } from '../src/fetch/fallback.js';
import type { FetcherPlugin } from '../src/fetch/types.js';
import { tarGz } from './helpers/archives.js';
import { tempDir } from './helpers/cli.js';
import {
  crawlFixture, fixtureHashes, fodsWithEnv, movedTo, pluginHarness, startUpstream, type FodWithEnv, type PluginHarness, type Upstream,
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
      execFileSync('bash', ['-c', `cd "${dir}/zips" && mkdir x && cd x && unzip -qq ../unzipme-0.3.zip && find . -exec touch -d 2001-01-01 {} + && rm ../unzipme-0.3.zip && zip -q -9 -r ../unzipme-0.3.zip unzipme-0.3 && cd .. && rm -r x`]);
      // the flatpack archive now holds a path traversal
      writeFileSync(join(dir, 'flat', 'flatpack-1.0.tar.gz'), tarGz([{ name: 'README', data: 'x' }, { name: '../../escape', data: 'pwned' }]));
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
    const names = fods.filter((f) => f.fod.kind === 'archive').map((f) => f.fod.name).sort();
    expect(names).toEqual(['flatpack-1.0-source', 'source', 'trimmed-2.0-source', 'unzipme-0.3-source']);
  });

  test('fetchzip\'s own postFetch is recognised, with stripRoot and the renamed file', () => {
    const shape = (n: string) => fetchzipShape(byName(n).env);
    expect(shape('source')).toEqual({ ok: true, shape: { fileName: 'v1.2.0.tar.gz', stripRoot: true } });
    expect(shape('unzipme-0.3-source')).toEqual({ ok: true, shape: { fileName: 'unzipme-0.3.zip', stripRoot: true } });
    expect(shape('flatpack-1.0-source')).toEqual({ ok: true, shape: { fileName: 'flatpack-1.0.tar.gz', stripRoot: false } });
    expect(shape('trimmed-2.0-source')).toMatchObject({ ok: false, custom: true });
  });

  for (const name of ['source', 'unzipme-0.3-source', 'flatpack-1.0-source']) {
    test(`${name}: NAR hash of the unpacked download equals the declared hash`, async () => {
      const f = at(upstream, name);
      const v = await archive.fetch(f.fod, h.ctx(f.env, name));
      expect(v).toMatchObject({ ok: true, urlIndex: 0 });
      if (!v.ok || v.output.type !== 'tree') throw new Error('no tree');
      expect(v.output.narHash).toBe(f.fod.hash.hex);
      // and it is the hash regen.sh recorded with the real tools
      const key = { source: 'libgh', 'unzipme-0.3-source': 'unzipme', 'flatpack-1.0-source': 'flatpack' }[name]!;
      expect(v.output.narHash).toBe(hashes.get(key)!['nar-sha256-hex']);
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
  test('same URL, new content: a broken hash, with the hash of what upstream now serves', async () => {
    const f = at(changed, 'source');
    const v = await archive.fetch(f.fod, h.ctx(f.env, 'changed'));
    expect(v).toMatchObject({ ok: false, verdict: 'broken-hash' });
    if (v.ok || v.verdict !== 'broken-hash') throw new Error('not broken');
    const ref = tempDir('fodder-ref-');
    execFileSync('bash', ['-c', `cd "${ref}" && tar xzf "${join(changed.dir, LIBGH)}" && nix-hash --type sha256 libgh-1.2.0 > hash`]);
    const expected = execFileSync('cat', [join(ref, 'hash')], { encoding: 'utf8' }).trim();
    expect(v.mismatch).toEqual({ url: f.fod.resolvedUrls[0], urlIndex: 0, actual: { algo: 'sha256', hex: expected } });
    expect(v.message).toContain(expected);
  });

  test('a broken hash from the exact plug-in stands: the nix fallback is not asked', async () => {
    const f = at(changed, 'source');
    let asked = false;
    const nix: FetcherPlugin = {
      id: 'nix', certainty: 'exact', canFetch: () => ({ ok: true }),
      fetch: async () => { asked = true; throw new Error('must not run'); },
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
    const server = await startUpstream({ edit: (dir) => writeFileSync(join(dir, LIBGH), tarGz([{ name: 'a/x', data: 'a' }, { name: 'b/y', data: 'b' }])) });
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
