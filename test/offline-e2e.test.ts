/**
 * End to end, offline at the end: crawl the fixture set (CLI), make a signing key (CLI), fetch
 * the flat sources into the hashed mirror (`fodder fetch --kind url`, CLI), fetch every other
 * FOD with the archive and git plug-ins and the nix fallback, publish everything verified in
 * the binary cache, stop the servers, and then, in a fresh chroot store with
 * `substituters = file://MIRROR/cache`, `require-sigs = true` and fodder's public key trusted,
 * realise every FOD of the set. Every FOD fodder mirrored must substitute; the others are
 * exactly the ones fodder could not mirror, each with its reason.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { createArchiveFetcher } from '../src/fetch/plugins/archive.js';
import { createGitFetcher } from '../src/fetch/plugins/git.js';
import { createNixFetcher, crawlDrvStores } from '../src/fetch/plugins/nix.js';
import { fetchWithFallback, type FetcherSet } from '../src/fetch/fallback.js';
import { openDb } from '../src/db/open.js';
import { createHashedMirror } from '../src/mirror/hashed-mirror.js';
import { narInfoFingerprint, parseNarInfo, verifyNarInfoSig } from '../src/mirror/narinfo.js';
import { addFlatSources, createBinaryCache } from '../src/mirror/binary-cache.js';
import { fodder, tempDir } from './helpers/cli.js';
import { crawlFixture, fodsWithEnv, pluginHarness, startUpstream, type FodWithEnv, type PluginHarness, type Upstream } from './helpers/fixture-upstream.js';

interface Row { name: string; kind: string; outPath: string; mirroredBy: string | null; reason: string | null; realised?: boolean; nixSays?: string }

const dir = tempDir('fodder-e2e-');
const mirrorDir = join(dir, 'mirror');
let upstream: Upstream;
let h: PluginHarness;
let fods: FodWithEnv[];
let publicKey: string;
const rows = new Map<string, Row>(); // by out path: FODs sharing an output are one row

/** Why nothing was mirrored, by FOD name, as this fixture is built. */
const NOT_MIRRORABLE: Record<string, RegExp> = {
  'dead-source-1.0.tar.gz': /^url: dead/,
  'broken-hash-1.3.tar.gz': /^url: broken-hash/,
  'trimmed-2.0-source': /^nix: unverifiable \(nix-failed\)/, // custom postFetch: only its builder reproduces it, and the fixture stdenv cannot build
  'hello-fix-build.patch': /^nix: unverifiable \(nix-failed\)/, // fetchpatch: the hash is of the normalised patch
  'rust-app-1.0-vendor': /^nix: unverifiable \(nix-failed\)/, // vendored deps: no URL at all
  'hg-archive': /^nix: unverifiable \(nix-failed\)/, // fetchhg: no hg server in the fixture
  'svnthing-r1234': /^nix: unverifiable \(nix-failed\)/, // fetchsvn: no svn server in the fixture
  'secret-sdk-1.0.tar.gz': /^unverifiable \(not-exact\): nix: requireFile/, // requireFile: only a person can add it
};

beforeAll(async () => {
  upstream = await startUpstream({ port: 18661 });
  const crawl = await crawlFixture();
  fods = fodsWithEnv(crawl.dbFile);
  for (const { fod } of fods) {
    if (!rows.has(fod.outPath)) rows.set(fod.outPath, { name: fod.name, kind: fod.kind, outPath: fod.outPath, mirroredBy: null, reason: null });
  }

  const k = await fodder(['keygen', 'fodder-e2e-1', '--out', join(dir, 'keys'), '--json']);
  expect(k.code, k.stderr).toBe(0);
  const key = JSON.parse(k.stdout) as { secretKeyFile: string; publicKey: string };
  publicKey = key.publicKey;
  const cache = createBinaryCache({ mirrorDir, compression: 'xz', secretKey: readFileSync(key.secretKeyFile, 'utf8') });

  // flat sources: the url plug-in and the hashed mirror, through the CLI
  const f = await fodder(['fetch', '--db', crawl.dbFile, '--mirror', mirrorDir, '--kind', 'url', '--retries', '0', '--connect-timeout', '2', '--json', '--no-progress']);
  expect(f.code, f.stderr).toBe(0);
  const db = openDb(crawl.dbFile, { readonly: true });
  const urlVerdicts = new Map((db.prepare(`SELECT drv_path, verdict FROM fetch_results`).all() as { drv_path: string; verdict: string }[]).map((r) => [r.drv_path, r.verdict]));
  db.close();
  const flat = await addFlatSources(cache, fods.map((x) => x.fod).filter((x) => x.kind === 'url'), createHashedMirror(mirrorDir, { create: false }));
  for (const e of flat.added) rows.get(e.storePath)!.mirroredBy = 'url';
  for (const m of flat.missing) rows.get(m.outPath)!.reason = `url: ${urlVerdicts.get(m.drvPath) ?? 'not fetched'}`;

  // everything else: the native plug-ins, then the nix fallback
  h = pluginHarness(join(dir, 'work'));
  const set: FetcherSet = {
    native: { archive: createArchiveFetcher(), git: createGitFetcher() },
    nix: createNixFetcher({
      store: join(dir, 'build-store'), drvStores: crawlDrvStores(crawl.store), timeoutMs: 300_000,
      options: { 'extra-sandbox-paths': ['/bin', '/usr', '/lib', '/lib64'].filter((p) => existsSync(p)).join(' '), substituters: '', 'connect-timeout': '2' },
    }),
  };
  for (const x of fods.filter((y) => y.fod.kind !== 'url')) {
    const row = rows.get(x.fod.outPath)!;
    if (row.mirroredBy) continue;
    const v = await fetchWithFallback(x.fod, h.ctx(x.env, x.fod.name), set);
    if (v.verdict.ok) {
      await cache.addOutput(x.fod, v.verdict.output);
      row.mirroredBy = v.by;
      row.reason = null;
    } else {
      row.reason = `${v.by ? `${v.by}: ` : ''}${v.verdict.verdict}${'reason' in v.verdict ? ` (${v.verdict.reason})` : ''}: ${v.verdict.message.split('\n')[0]}`;
    }
  }
  await h.close();
  await upstream.close();
}, 900_000);

afterAll(async () => {
  await upstream?.close();
  writeFileSync(join(dir, 'report.json'), JSON.stringify([...rows.values()], null, 2));
});

describe('offline, from the binary cache alone', () => {
  test('the servers are gone', async () => {
    const up = await new Promise<boolean>((r) => {
      const s = new Socket();
      s.once('connect', () => { s.destroy(); r(true); });
      s.once('error', () => r(false));
      s.connect(18661, '127.0.0.1');
    });
    expect(up).toBe(false);
  });

  test('every narinfo carries a valid signature by fodder\'s key', () => {
    const cacheDir = join(mirrorDir, 'cache');
    const infos = readdirSync(cacheDir).filter((n) => n.endsWith('.narinfo'));
    expect(infos.length).toBe([...rows.values()].filter((r) => r.mirroredBy).length);
    for (const n of infos) {
      const info = parseNarInfo(readFileSync(join(cacheDir, n), 'utf8'));
      expect(info.sigs).toHaveLength(1);
      expect(verifyNarInfoSig(narInfoFingerprint(info), info.sigs[0], publicKey)).toBe(true);
      expect(info.ca).toMatch(/^fixed:/);
    }
  });

  test('every FOD fodder mirrored is realised in a fresh store; the rest are exactly the unmirrorable ones', () => {
    const store = join(dir, 'offline-store');
    for (const row of rows.values()) {
      const r = spawnSync('nix-store', [
        '--store', store, '--option', 'substituters', `file://${join(mirrorDir, 'cache')}`, '--option', 'require-sigs', 'true',
        '--option', 'trusted-public-keys', publicKey, '--option', 'connect-timeout', '1', '--option', 'hashed-mirrors', '',
        '--realise', row.outPath,
      ], { encoding: 'utf8', timeout: 120_000 });
      row.realised = r.status === 0;
      if (!row.realised) row.nixSays = r.stderr.split('\n').filter(Boolean).pop();
    }
    const table = [...rows.values()].sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name))
      .map((r) => `${r.realised ? 'realised    ' : 'NOT realised'}  ${r.kind.padEnd(7)} ${r.name.padEnd(32)} ${r.mirroredBy ? `via ${r.mirroredBy}` : r.reason}`);
    console.log(`offline realisation of ${rows.size} FOD outputs:\n${table.join('\n')}`);

    for (const r of rows.values()) {
      if (r.mirroredBy) expect(r.realised, `${r.name}: ${r.nixSays}`).toBe(true);
      else expect(r.realised, r.name).toBe(false);
    }
    const missing = [...rows.values()].filter((r) => !r.mirroredBy);
    expect(Object.fromEntries(missing.map((r) => [r.name, r.reason]))).toEqual(
      Object.fromEntries(Object.entries(NOT_MIRRORABLE).map(([name, re]) => [name, expect.stringMatching(re)])),
    );
    const byKind = (kind: string) => [...rows.values()].filter((r) => r.kind === kind && r.realised).map((r) => r.name).sort();
    expect(byKind('archive')).toEqual(['flatpack-1.0-source', 'source', 'unzipme-0.3-source']);
    expect(byKind('git')).toEqual(['libgit-2f90906', 'withsub-19fd777']);
    expect(byKind('url').length).toBe([...rows.values()].filter((r) => r.kind === 'url').length - 2);
  });

  test('the realised outputs are what the .drv files declare (Nix verifies each path against its content address)', () => {
    const store = join(dir, 'offline-store');
    const realised = [...rows.values()].filter((r) => r.realised).map((r) => r.outPath);
    const v = spawnSync('nix-store', ['--store', store, '--verify-path', ...realised], { encoding: 'utf8' });
    expect(v.status, v.stderr).toBe(0);
  });
});
