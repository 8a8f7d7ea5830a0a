/**
 * The `nix` fallback: what the archive plug-in will not reproduce (a fetchzip with a custom
 * postFetch) is realised by real Nix from its .drv, copied out with `nix-store --dump`, and
 * published in the binary cache; Nix's own hash mismatch is a broken hash; every other failure
 * of Nix is unverifiable. The fixture set's own non-flat FODs cannot be built (their stdenv is
 * a fake bootstrap chain whose builders have no tools), which the last tests show.
 *
 * Builds happen in chroot stores with the host's /bin, /usr and /lib bound in (sandbox-paths),
 * so a hand-written fetchzip-like derivation runs the real fetchzip postFetch with the host's
 * curl, tar and unzip.
 */
import { fetchzipScript } from '../src/graph/fetchzip.js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createArchiveFetcher } from '../src/fetch/plugins/archive.js';
import { createNixFetcher, crawlDrvStores } from '../src/fetch/plugins/nix.js';
import { fetchWithFallback, type FetcherSet } from '../src/fetch/fallback.js';
import { fodFromDrv } from '../src/graph/fod.js';
import { parseDrv } from '../src/nix-formats/drv-parse.js';
import { drvStoreHas, drvStoreUrl, readStoreSource, readStoreText } from '../src/graph/store-slots.js';
import { drvEntry } from '../src/nix-formats/drv-export.js';
import { createBinaryCache } from '../src/mirror/binary-cache.js';
import { tempDir } from './helpers/cli.js';
import { binaryCacheOptions } from '../src/fetch/cache-options.js';
import {
  crawlFixture,
  fixtureHashes,
  fodsWithEnv,
  pluginHarness,
  startUpstream,
  type FodWithEnv,
  type PluginHarness,
  type Upstream,
} from './helpers/fixture-upstream.js';

const hashes = fixtureHashes();
const sri = (key: string) => hashes.get(key)!['nar-sha256-sri'];
// `sandbox-paths`, which replaces Nix's default, not `extra-`: Debian 13's Nix 2.26 binds
// /bin/sh by default, and that with a bound /bin (a symlink on merged-/usr Debian) fails
const HOST_TOOLS = { 'sandbox-paths': ['/bin', '/usr', '/lib', '/lib64'].filter((p) => existsSync(p)).join(' '), substituters: '' };

let upstream: Upstream;
let h: PluginHarness;
let drvStore: string;
let fixture: { dbFile: string; store: string; fods: FodWithEnv[] };

/**
 * A fetchzip-shaped derivation: the environment nixpkgs' fetchzip gives (postFetch with the
 * user's code added), built by a tiny fetchurl builder that downloads with the host's curl and
 * runs that postFetch for real.
 */
function fetchzipDrv(name: string, url: string, userPostFetch: string, hash: string): string {
  const postFetch = fetchzipScript(url.split('/').pop()!, userPostFetch);
  const builder = `set -e
export PATH=/usr/bin:/bin
unpackFile() { case "$1" in *.zip) unzip -qq "$1" ;; *) tar xf "$1" --mode=+w --warning=no-timestamp ;; esac; }
downloadedFile="$TMPDIR/file"
curl -sSf -o "$downloadedFile" "$urls"
eval "$postFetch"
`;
  const dir = tempDir('fodder-drv-');
  writeFileSync(join(dir, 'builder.sh'), builder);
  writeFileSync(
    join(dir, 'default.nix'),
    `derivation {
  name = ${JSON.stringify(name)};
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-e" ./builder.sh ];
  urls = ${JSON.stringify(url)};
  postFetch = ${JSON.stringify(postFetch).replace(/\$\{/g, '\\${')};
  downloadToTemp = "1";
  recursiveHash = "1";
  outputHashMode = "recursive";
  outputHashAlgo = "";
  outputHash = ${JSON.stringify(hash)};
}`,
  );
  return execFileSync('nix-instantiate', ['--store', drvStoreUrl(drvStore), join(dir, 'default.nix')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}

function fodOf(drvPath: string): FodWithEnv {
  const drv = parseDrv(readStoreText(drvStore, drvPath), drvPath);
  return { fod: fodFromDrv(drvPath, drv, {}), env: drv.env };
}

beforeAll(async () => {
  upstream = await startUpstream();
  h = pluginHarness();
  drvStore = join(tempDir('fodder-drvstore-'), 'store');
  const crawl = await crawlFixture();
  fixture = { ...crawl, fods: fodsWithEnv(crawl.dbFile) };
}, 300_000);

afterAll(async () => {
  await h?.close();
  await upstream?.close();
});

describe('a fetchzip with a custom postFetch, realised by Nix', () => {
  const TRIM = 'rm -r "$out/tests"\necho "trimmed by postFetch" > "$out/TRIMMED"';

  test('the archive plug-in refuses it; the nix fallback builds it, and the tree has the declared hash', async () => {
    const f = fodOf(fetchzipDrv('trimmed-2.0-source', upstream.url('/custom/trimmed-2.0.tar.gz'), TRIM, sri('trimmed')));
    expect(f.fod.kind).toBe('archive');
    expect(f.fod.postFetch).toBe(true);
    const set: FetcherSet = {
      native: { archive: createArchiveFetcher() },
      nix: createNixFetcher({ store: join(tempDir('fodder-build-'), 'store'), drvStores: [drvStore], options: HOST_TOOLS, timeoutMs: 120_000 }),
    };
    const ctx = h.ctx(f.env, 'trimmed-nix');
    const v = await fetchWithFallback(f.fod, ctx, set);
    expect(v.by).toBe('nix');
    // refused up front: the archive plug-in never downloaded it, and its refusal says why
    expect(v.nativeVerdict).toMatchObject({
      verdict: 'unverifiable',
      reason: 'custom-postFetch',
      message: 'archive: fetchzip with a custom postFetch (rm -r "$out/tests"; echo "trimmed by postFetch" > "$out/TRIMMED")',
    });
    expect(h.attempts.filter((a) => a.url.endsWith('/custom/trimmed-2.0.tar.gz'))).toEqual([]);
    expect(v.verdict).toMatchObject({ ok: true, output: { type: 'tree', narHash: hashes.get('trimmed')!['nar-sha256-hex'] } });
    if (!v.verdict.ok) throw new Error('not ok');
    expect(readFileSync(join(v.verdict.output.path, 'TRIMMED'), 'utf8')).toBe('trimmed by postFetch\n');

    // and it goes into the binary cache like any other tree, under the same store path the fixture's trimmed FOD has
    const cache = createBinaryCache({ ...binaryCacheOptions(tempDir('fodder-mirror-'), {}), compression: 'xz' });
    const e = await cache.addOutput(f.fod, v.verdict.output);
    expect(e.storePath).toBe(fixture.fods.find((x) => x.fod.name === 'trimmed-2.0-source')!.fod.outPath);
  });

  test("with no drv store, the .drv and its builder script come from the database's records: imported, then built", async () => {
    const drvPath = fetchzipDrv('trimmed-2.0-source', upstream.url('/custom/trimmed-2.0.tar.gz'), TRIM, sri('trimmed'));
    const f = fodOf(drvPath);
    const text = readStoreText(drvStore, drvPath);
    const srcs = parseDrv(text, drvPath).inputSrcs;
    expect(srcs).toHaveLength(1); // ./builder.sh
    // what a crawl records: the .drv's text and its input source (see createClosureReader)
    const closureOf = (p: string) => (p === drvPath ? [...srcs.map((s) => readStoreSource(drvStore, s)), drvEntry({ drvPath, text })] : null);
    const nix = createNixFetcher({ store: join(tempDir('fodder-build-'), 'store'), closureOf, options: HOST_TOOLS, timeoutMs: 120_000 });
    const v = await nix.fetch(f.fod, h.ctx(f.env, 'trimmed-db'));
    expect(v).toMatchObject({ ok: true, output: { type: 'tree', narHash: hashes.get('trimmed')!['nar-sha256-hex'] } });
  });

  test("Nix's own hash mismatch is a broken hash, with the hash Nix got", async () => {
    const f = fodOf(fetchzipDrv('trimmed-2.0-source', upstream.url('/custom/trimmed-2.0.tar.gz'), TRIM, sri('trimmed-without-postfetch')));
    const nix = createNixFetcher({ store: join(tempDir('fodder-build-'), 'store'), drvStores: [drvStore], options: HOST_TOOLS, timeoutMs: 120_000 });
    const v = await nix.fetch(f.fod, h.ctx(f.env, 'nix-mismatch'));
    expect(v).toMatchObject({ ok: false, verdict: 'broken-hash', mismatch: { actual: { algo: 'sha256', hex: hashes.get('trimmed')!['nar-sha256-hex'] } } });
  });

  test('a builder that fails is unverifiable, not broken', async () => {
    const f = fodOf(fetchzipDrv('gone-1.0-source', upstream.url('/custom/no-such-file.tar.gz'), TRIM, sri('trimmed')));
    const nix = createNixFetcher({ store: join(tempDir('fodder-build-'), 'store'), drvStores: [drvStore], options: HOST_TOOLS, timeoutMs: 120_000 });
    const v = await nix.fetch(f.fod, h.ctx(f.env, 'nix-fails'));
    expect(v).toMatchObject({ ok: false, verdict: 'unverifiable', reason: 'nix-failed' });
  });
});

describe("the fixture set's own FODs and the nix fallback", () => {
  test("the crawl's per-worker stores are all searched for .drv files", () => {
    const stores = crawlDrvStores(fixture.store);
    expect(stores[0]).toBe(fixture.store);
    for (const f of fixture.fods)
      expect(
        stores.some((s) => drvStoreHas(s, f.fod.drvPath)),
        f.fod.drvPath,
      ).toBe(true);
  });

  test('requireFile is not built at all, and a .drv in no store is unverifiable', async () => {
    const nix = createNixFetcher({ store: join(tempDir('fodder-build-'), 'store'), drvStores: [], options: HOST_TOOLS, timeoutMs: 120_000 });
    const manual = fixture.fods.find((x) => x.fod.kind === 'manual')!;
    expect(nix.canFetch(manual.fod, manual.env)).toMatchObject({ ok: false });
    const patch = fixture.fods.find((x) => x.fod.kind === 'patch')!;
    const v = await nix.fetch(patch.fod, h.ctx(patch.env, 'nodrv'));
    expect(v).toMatchObject({ ok: false, verdict: 'unverifiable', reason: 'drv-missing' });
  });
});
