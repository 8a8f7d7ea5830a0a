/**
 * The binary cache of FOD outputs against real Nix: entries fodder writes (trees and flat
 * files, every compression, signed with a key from `fodder keygen` or from Nix's own
 * generator) are substituted into fresh chroot stores with `require-sigs = true`; what Nix
 * checks of the signature and of the content address is proved case by case; and content that
 * does not match its declared hash is never published.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FodderError } from '../src/errors.js';
import { encodeNix32 } from '../src/nix-formats/hash.js';
import type { Fod } from '../src/graph/types.js';
import { HASH_ALGOS } from '../src/nix-formats/hash.js';
import { createHashedMirror } from '../src/mirror/hashed-mirror.js';
import { narInfoFingerprint, parseNarInfo, verifyNarInfoSig } from '../src/nix-formats/narinfo.js';
import { addFlatSources, createBinaryCache, CacheErrorCode, type CacheCompression } from '../src/mirror/binary-cache.js';
import { binaryCacheOptions } from '../src/fetch/cache-options.js';
import { placeUnpacked, unpackArchive } from '../src/fetch/unpack.js';
import type { Digests } from '../src/mirror/types.js';
import { fodder, tempDir } from './helpers/cli.js';
import { UPSTREAM, crawlFixture, fodsWithEnv, type FodWithEnv } from './helpers/fixture-upstream.js';
import { realiseIn } from './helpers/nix.js';

let fods: FodWithEnv[];
let keys: { secret: string; public: string; secretFile: string };
let tree: string; // the libgh source tree, unpacked
const dir = tempDir('fodder-cache-');
const byName = (name: string) => fods.find((f) => f.fod.name === name)!.fod;
const helloFile = join(UPSTREAM, 'mirror/gnu/hello/hello-2.12.tar.gz');

/** `nix-store --realise PATH` in a fresh chroot store, substituting from `cache` only. */
function realise(cache: string, storePath: string, trusted: string | null, store = tempDir('fodder-sub-')): { ok: boolean; out: string; store: string } {
  const r = realiseIn(store, [storePath], { substituters: `file://${cache}`, 'require-sigs': 'true', 'trusted-public-keys': trusted ?? '' });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}`, store };
}

function digestsOf(file: string): Digests {
  const b = readFileSync(file);
  return Object.fromEntries(HASH_ALGOS.map((a) => [a, createHash(a).update(b).digest('hex')])) as Digests;
}

beforeAll(async () => {
  const crawl = await crawlFixture();
  fods = fodsWithEnv(crawl.dbFile);
  const k = await fodder(['keygen', 'fodder-test-1', '--out', join(dir, 'keys'), '--json']);
  expect(k.code, k.stderr).toBe(0);
  const info = JSON.parse(k.stdout) as { secretKeyFile: string; publicKey: string };
  keys = { secret: readFileSync(info.secretKeyFile, 'utf8'), public: info.publicKey, secretFile: info.secretKeyFile };
  tree = join(dir, 'libgh');
  await unpackArchive(join(UPSTREAM, 'github/fixture-org/libgh/archive/v1.2.0.tar.gz'), join(dir, 'unpack'), { tool: 'tar' });
  await placeUnpacked(join(dir, 'unpack'), tree, true);
}, 300_000);

afterAll(() => {
  execFileSync('rm', ['-rf', dir]);
});

describe('fodder keygen', () => {
  test("writes a 0600 secret key and a public key in Nix's format, and refuses to overwrite them", async () => {
    expect(keys.secret).toMatch(/^fodder-test-1:[A-Za-z0-9+/]{86}==$/);
    expect(keys.public).toMatch(/^fodder-test-1:[A-Za-z0-9+/]{43}=$/);
    expect((await import('node:fs')).statSync(keys.secretFile).mode & 0o777).toBe(0o600);
    const again = await fodder(['keygen', 'fodder-test-1', '--out', join(dir, 'keys')]);
    expect(again.code, again.stderr).toBe(2);
    expect(again.stderr).toMatch(/exists/);
  });
});

describe('Nix substitutes what fodder publishes', () => {
  for (const compression of ['xz', 'none', 'zstd'] as CacheCompression[]) {
    test(`${compression}: a fetchzip tree and a flat tarball, signed, into a fresh store with require-sigs`, async () => {
      const mirror = join(dir, `mirror-${compression}`);
      const cache = createBinaryCache({ ...binaryCacheOptions(mirror, {}), compression, secretKey: keys.secret });
      const libgh = byName('source');
      const hello = byName('hello-2.12.tar.gz');
      const t = await cache.addTree(libgh, tree);
      const f = await cache.addFile(hello, helloFile);
      expect(t.signed && f.signed).toBe(true);

      // the narinfo has every field, and the signature is over the right fingerprint
      const info = parseNarInfo(readFileSync(t.narInfoFile, 'utf8'));
      expect(info).toMatchObject({
        storePath: libgh.outPath,
        compression,
        references: [],
        deriver: libgh.drvPath.slice('/nix/store/'.length),
        ca: `fixed:r:sha256:${encodeNix32(Buffer.from(libgh.hash.hex, 'hex'))}`,
      });
      expect(info.url).toMatch(compression === 'none' ? /^nar\/[0-9a-z]{52}\.nar$/ : compression === 'xz' ? /\.nar\.xz$/ : /\.nar\.zst$/);
      expect(info.fileSize).toBe(readFileSync(join(mirror, 'cache', info.url)).length);
      expect(verifyNarInfoSig(narInfoFingerprint(info), info.sigs[0], keys.public)).toBe(true);
      expect(readFileSync(join(mirror, 'cache', 'nix-cache-info'), 'utf8')).toMatch(/^StoreDir: \/nix\/store\n/);
      expect(readdirSync(join(mirror, 'cache')).filter((n) => n.includes('.tmp-'))).toEqual([]);

      // each NAR file, decompressed by the compressor's own tool (not Nix), is the NAR its narinfo describes
      for (const e of [t, f]) {
        const i = parseNarInfo(readFileSync(e.narInfoFile, 'utf8'));
        const file = join(mirror, 'cache', i.url);
        const nar = compression === 'none' ? readFileSync(file) : execFileSync(compression === 'xz' ? 'xz' : 'zstd', ['-dc', file], { maxBuffer: 1 << 30 });
        expect(nar.length, i.url).toBe(i.narSize);
        expect(createHash('sha256').update(nar).digest('hex'), i.url).toBe(i.narHash.hex);
      }

      const store = tempDir('fodder-sub-');
      for (const fod of [libgh, hello]) {
        let r = realise(join(mirror, 'cache'), fod.outPath, keys.public, store);
        // Nix 2.26 has twice, in whole-suite runs under load, called a NAR file "incomplete" that is
        // checked whole just above and did not change (never when this substitution ran alone: 30
        // runs of this test, 60 by hand): asked once more, it must then substitute it
        if (!r.ok && /is incomplete/.test(r.out)) {
          console.warn(`asked again after: ${r.out.trim().split('\n').at(-2) ?? r.out}`);
          r = realise(join(mirror, 'cache'), fod.outPath, keys.public, store);
        }
        expect(r.ok, r.out).toBe(true);
      }
      // Nix's own view of what it got
      const q = execFileSync('nix-store', ['--store', store, '--query', '--hash', libgh.outPath], { encoding: 'utf8' }).trim();
      expect(q).toBe(`sha256:${encodeNix32(Buffer.from(libgh.hash.hex, 'hex'))}`);
      expect(readFileSync(join(store, hello.outPath)).equals(readFileSync(helloFile))).toBe(true);
      execFileSync('nix-store', ['--store', store, '--verify-path', libgh.outPath]);
    });
  }

  test('a key from nix-store --generate-binary-cache-key signs as well as one from fodder keygen', async () => {
    const k = tempDir('fodder-nixkey-');
    execFileSync('nix-store', ['--generate-binary-cache-key', 'nix-made-1', join(k, 'sk'), join(k, 'pk')]);
    const opts = binaryCacheOptions(join(dir, 'mirror-nixkey'), { compression: 'xz', secretKeyFile: join(k, 'sk') });
    const cache = createBinaryCache(opts);
    expect(cache.publicKey).toBe(readFileSync(join(k, 'pk'), 'utf8').trim());
    const e = await cache.addTree(byName('source'), tree);
    // without the CA field the signature is what Nix goes by (see the next tests)
    writeFileSync(e.narInfoFile, readFileSync(e.narInfoFile, 'utf8').replace(/^CA: .*\n/m, ''));
    const r = realise(cache.dir, e.storePath, cache.publicKey);
    expect(r.ok, r.out).toBe(true);
  });
});

describe('what Nix 2.8 checks: the signature, or the content address', () => {
  let cacheDir: string;
  let storePath: string;
  let original: string;
  let narinfo: string;

  beforeAll(async () => {
    const cache = createBinaryCache({ ...binaryCacheOptions(join(dir, 'mirror-sigs'), {}), compression: 'xz', secretKey: keys.secret });
    const e = await cache.addTree(byName('source'), tree);
    cacheDir = cache.dir;
    storePath = e.storePath;
    narinfo = e.narInfoFile;
    original = readFileSync(narinfo, 'utf8');
  });
  const withInfo = (text: string) => writeFileSync(narinfo, text);
  const noCa = () => original.replace(/^CA: .*\n/m, '');
  const badSig = (t: string) => t.replace(/^Sig: (fodder-test-1:)(.)/m, (_m, k: string, c: string) => `Sig: ${k}${c === 'A' ? 'B' : 'A'}`);
  const noSig = (t: string) => t.replace(/^Sig: .*\n/m, '');

  test("without CA: fodder's signature is accepted", () => {
    withInfo(noCa());
    expect(realise(cacheDir, storePath, keys.public).ok).toBe(true);
  });

  test('without CA: no signature, a bad signature, or an untrusted key is refused', () => {
    withInfo(noSig(noCa()));
    let r = realise(cacheDir, storePath, keys.public);
    expect(r.ok).toBe(false);
    expect(r.out).toMatch(/not signed by any of the keys/);
    withInfo(badSig(noCa()));
    r = realise(cacheDir, storePath, keys.public);
    expect(r.ok).toBe(false);
    expect(r.out).toMatch(/not signed by any of the keys/);
    withInfo(noCa());
    r = realise(cacheDir, storePath, 'someone-else-1:' + Buffer.alloc(32, 9).toString('base64'));
    expect(r.ok).toBe(false);
  });

  test('with CA: Nix trusts the content address instead, so even an unsigned or badly signed entry is accepted', () => {
    withInfo(noSig(original));
    expect(realise(cacheDir, storePath, keys.public).ok).toBe(true);
    withInfo(badSig(original));
    expect(realise(cacheDir, storePath, keys.public).ok).toBe(true);
  });

  test('with CA: other content under the same path is refused (the content address is checked)', async () => {
    // a correct, signed entry for another tree, relabelled as this path
    const other = join(dir, 'other-tree');
    cpSync(tree, other, { recursive: true });
    writeFileSync(join(other, 'README'), 'not libgh\n');
    const fake: Fod = {
      ...byName('source'),
      hash: { ...byName('source').hash, hex: (await import('../src/nix-formats/nar.js').then((m) => m.narHash(other))).hex },
    };
    const { fodStorePath } = await import('../src/nix-formats/store-path.js');
    fake.outPath = fodStorePath(fake.hash, fake.name);
    const c2 = createBinaryCache({ ...binaryCacheOptions(join(dir, 'mirror-sigs'), {}), compression: 'xz', secretKey: keys.secret });
    const e2 = await c2.addTree(fake, other);
    const forged = readFileSync(e2.narInfoFile, 'utf8')
      .replace(e2.storePath, storePath)
      .replace(/^Sig: .*\n/m, '');
    const forgedInfo = parseNarInfo(forged);
    // re-signed by fodder's own key: even a valid signature does not get past the content address
    const { signNarInfo } = await import('../src/nix-formats/narinfo.js');
    withInfo(forged.replace(/^CA:/m, `Sig: ${signNarInfo(narInfoFingerprint(forgedInfo), keys.secret)}\nCA:`));
    const r = realise(cacheDir, storePath, keys.public);
    expect(r.ok).toBe(false);
    // Nix 2.8 notices the CA does not give this path, falls back to the signature, accepts it,
    // then aborts on an assertion when the NAR's content address gives another path
    expect(r.out).toMatch(/claims to be content-addressed but isn't/);
    expect(spawnSync('nix-store', ['--store', r.store, '--check-validity', storePath]).status).not.toBe(0);
    withInfo(original);
  });
});

describe('nothing unverified is published', () => {
  test('a tree whose NAR hash is not the declared one: refused, no narinfo, no NAR file left', async () => {
    const cache = createBinaryCache({ ...binaryCacheOptions(join(dir, 'mirror-bad'), {}), compression: 'xz', secretKey: keys.secret });
    const other = join(dir, 'tampered');
    cpSync(tree, other, { recursive: true });
    writeFileSync(join(other, 'README'), 'tampered\n');
    const err = await cache.addTree(byName('source'), other).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FodderError);
    expect((err as FodderError).code).toBe(CacheErrorCode.HASH_MISMATCH);
    expect(existsSync(cache.narInfoPath(byName('source').outPath))).toBe(false);
    expect(readdirSync(join(cache.dir, 'nar'))).toEqual([]);
  });

  test('a flat file with the wrong content: refused before anything is written', async () => {
    const cache = createBinaryCache({ ...binaryCacheOptions(join(dir, 'mirror-bad2'), {}), compression: 'none' });
    const err = await cache.addFile(byName('hello-2.12.tar.gz'), join(UPSTREAM, 'zlib/zlib-1.3.tar.gz')).catch((e: unknown) => e);
    expect((err as FodderError).code).toBe(CacheErrorCode.HASH_MISMATCH);
    expect(existsSync(join(cache.dir, 'nar')) ? readdirSync(join(cache.dir, 'nar')) : []).toEqual([]);
    expect(existsSync(cache.narInfoPath(byName('hello-2.12.tar.gz').outPath))).toBe(false);
  });

  test('an out path that does not follow from the hash and name is refused', async () => {
    const cache = createBinaryCache({ ...binaryCacheOptions(join(dir, 'mirror-bad3'), {}), compression: 'none' });
    const fod = { ...byName('source'), name: 'renamed' };
    await expect(cache.addTree(fod, tree)).rejects.toMatchObject({ code: CacheErrorCode.PATH_MISMATCH });
  });

  test('bad cache options name the key', () => {
    expect(() => binaryCacheOptions(dir, { compression: 'gzip' })).toThrow(/cache\.compression/);
    expect(() => binaryCacheOptions(dir, { secretKeyFile: join(dir, 'missing') })).toThrow(/cache\.secretKeyFile/);
  });
});

describe('flat url sources from the hashed mirror', () => {
  test('every flat FOD whose file the mirror holds gets an entry; the rest are listed as missing', async () => {
    const mirrorDir = join(dir, 'mirror-flat');
    const mirror = createHashedMirror(mirrorDir);
    for (const rel of ['mirror/gnu/hello/hello-2.12.tar.gz', 'zlib/zlib-1.3.tar.gz']) {
      const tmp = join(mirrorDir, 'tmp', 'x');
      cpSync(join(UPSTREAM, rel), tmp);
      await mirror.admitFile(tmp, digestsOf(tmp));
    }
    // `flat`: a copy for a cache read as file:// too, besides the entry fodder serve makes from the file
    const cache = createBinaryCache({ ...binaryCacheOptions(mirrorDir, { flat: true }), compression: 'xz', secretKey: keys.secret });
    const flat = fods.map((f) => f.fod).filter((f) => f.hash.mode === 'flat');
    const r = await addFlatSources(cache, flat, mirror);
    expect(r.added.map((e) => e.storePath).sort()).toEqual(
      flat
        .filter((f) => ['hello-2.12.tar.gz', 'zlib-1.3.tar.gz'].includes(f.name))
        .map((f) => f.outPath)
        .sort(),
    );
    expect(r.missing.length).toBe(new Set(flat.map((f) => f.outPath)).size - r.added.length);
    const again = await addFlatSources(cache, flat, mirror);
    expect(again.added).toEqual([]);
    expect(again.existed).toBe(r.added.length);
    for (const e of r.added) expect(existsSync(cache.flatNarInfoPath(e.storePath))).toBe(true);
    const store = tempDir('fodder-sub-');
    for (const e of r.added) expect(realise(cache.dir, e.storePath, keys.public, store).ok).toBe(true);
  });
});
