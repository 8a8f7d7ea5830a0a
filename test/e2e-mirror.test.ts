/**
 * The fetch and mirror issues end to end, through the CLI as a user runs it, with real Nix and
 * the fixture package set served on 127.0.0.1:18661 (its URLs name that port; 18662 is its dead
 * mirror). Every fetch happens while the server is up; every realisation after it is stopped.
 *
 * 1. Hashed mirror (`--kind url`): in a fresh chroot store with no substituters, every url FOD
 *    of `hello` (one behind a mirror:// URL whose first mirror is dead) is realised with the
 *    mirror as the only `hashed-mirrors`; the report lists exactly the broken and the dead one.
 * 2. Everything (`--kind url,archive,...,nix`, signed): in a fresh chroot store whose only
 *    substituter is `file://MIRROR/cache`, with `require-sigs` and fodder's key, every FOD
 *    fodder mirrored (flat, archive, git) is realised; the others are exactly the ones it could
 *    not mirror, each with its reason.
 * 3. An upstream archive that changed (same URL, new bytes) is a broken hash; a fetchzip with a
 *    custom postFetch whose archive changed too is not (fodder cannot judge it).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FetchSummary } from '../src/fetch/progress.js';
import type { Fod } from '../src/graph/types.js';
import { narInfoFingerprint, parseNarInfo, verifyNarInfoSig } from '../src/nix-formats/narinfo.js';
import type { Report } from '../src/report/types.js';
import { fodder, tempDir } from './helpers/cli.js';
import { FIXTURE_ARCHIVES, crawlFixture, fodsWithEnv, startUpstream, waitPortFree, type FixtureCrawl, type Upstream } from './helpers/fixture-upstream.js';
import { storeHolding, realiseIn } from './helpers/nix.js';
import { drvStoreUrl } from '../src/graph/store-slots.js';

const dir = tempDir('fodder-e2e-mirror-');
const FAST = ['--retries', '0', '--connect-timeout', '2', '--json', '--no-progress'];
/** every FOD kind, and the nix fallback */
const EVERYTHING = 'url,archive,git,hg,svn,patch,vendor,manual,other,nix';

/** Every archive FOD; all but trimmed (a custom postFetch) reproduced by the archive plug-in. */
const ARCHIVES = FIXTURE_ARCHIVES;

let upstream: Upstream | null = null;
let publicKey = '';
const flat = {} as { crawl: FixtureCrawl; mirror: string; summary: FetchSummary; report: Report };
const all = {} as { crawl: Omit<FixtureCrawl, 'store'>; mirror: string; summary: FetchSummary; report: Report; fods: Fod[] };
const changed = {} as {
  crawl: Omit<FixtureCrawl, 'store'>;
  mirror: string;
  summary: FetchSummary;
  report: Report;
  libghNewHash: string;
  /** the same, fetched again with the nix fallback on: Nix itself judges the custom postFetch */
  nixSummary: FetchSummary;
  nixReport: Report;
};

async function cli(args: string[]): Promise<string> {
  const r = await fodder(args);
  if (r.code !== 0) throw new Error(`fodder ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

const fetchJson = async (args: string[]) => JSON.parse(await cli(['fetch', ...args, ...FAST])) as FetchSummary;
const reportJson = async (db: string) => JSON.parse(await cli(['report', '--db', db, '--format', 'json', '--no-save'])) as Report;
const names = (l: { fod: { name: string } }[]) => l.map((e) => e.fod.name).sort();

/** Serves the fixture's upstream on its own port, 18661, for the duration of `body`. */
async function serving<T>(edit: ((dir: string) => void) | undefined, body: () => Promise<T>): Promise<T> {
  upstream = await startUpstream({ port: 18661, edit });
  try {
    return await body();
  } finally {
    await upstream.close();
    upstream = null;
  }
}

/** Re-packs an archive of the upstream copy with `edit` applied to its tree; returns the new tree's NAR hash (stripRoot). */
function repack(upstreamDir: string, archive: string, top: string, edit: (tree: string) => void): string {
  const t = tempDir('fodder-repack-');
  execFileSync('tar', ['-xzf', join(upstreamDir, archive), '-C', t]);
  edit(join(t, top));
  execFileSync('bash', ['-c', `tar --mtime=@999999 --owner=0 --group=0 -cf - -C "${t}" "${top}" | gzip -n > "${join(upstreamDir, archive)}"`]);
  return execFileSync('nix-hash', ['--type', 'sha256', join(t, top)], { encoding: 'utf8' }).trim();
}

/** Copies the closure of `drvs` from the crawl's drv stores into `store` (the way a user would carry .drv files). */
function importDrvs(crawlStore: string, drvs: string[], store: string): void {
  for (const drv of drvs) {
    const from = storeHolding(crawlStore, drv, 8);
    const r = spawnSync(
      'bash',
      [
        '-c',
        'nix-store --store "$1" --export $(nix-store --store "$1" -qR "$2") | nix-store --store "$3" --import >/dev/null',
        '_',
        drvStoreUrl(from),
        drv,
        store,
      ],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`copying ${drv} into ${store}: ${r.stderr}`);
  }
}

beforeAll(async () => {
  await waitPortFree(18662); // the fixture's dead mirror must stay dead
  const k = JSON.parse(await cli(['keygen', 'fodder-e2e-1', '--out', join(dir, 'keys'), '--json'])) as { secretKeyFile: string; publicKey: string };
  publicKey = k.publicKey;
  // the nix fallback builds in a chroot store of its own, with no substituter; the host's tools are visible to builders
  const config = join(dir, 'fodder.yaml');
  const yaml = (buildStore: string) => `fetch:
  cache:
    compression: xz
    flat: true
  nix:
    store: ${buildStore}
    timeoutSec: 300
    jobs: 2
    options:
      substituters: ''
      connect-timeout: '2'
      sandbox-paths: '${['/bin', '/usr', '/lib', '/lib64'].filter((p) => existsSync(p)).join(' ')}'
`;
  writeFileSync(config, yaml('nix-build-store'));
  // a build store of its own: an output Nix built before would be taken as it is
  const changedConfig = join(dir, 'fodder-changed.yaml');
  writeFileSync(changedConfig, yaml('nix-build-store-changed'));
  // the nix fallback takes its .drv files from the database: these two crawls keep no drv store
  const dbOnly = () => crawlFixture('x86_64-linux', { keepStore: false });
  [flat.crawl, all.crawl, changed.crawl] = [await crawlFixture(), await dbOnly(), await dbOnly()];
  [flat.mirror, all.mirror, changed.mirror] = ['mirror-flat', 'mirror-all', 'mirror-changed'].map((m) => join(dir, m));

  await serving(undefined, async () => {
    flat.summary = await fetchJson(['--db', flat.crawl.dbFile, '--mirror', flat.mirror, '--kind', 'url']);
    all.summary = await fetchJson(['--config', config, '--db', all.crawl.dbFile, '--mirror', all.mirror, '--kind', EVERYTHING, '--sign-key', k.secretKeyFile]);
  });
  await serving(
    (up) => {
      changed.libghNewHash = repack(up, 'github/fixture-org/libgh/archive/v1.2.0.tar.gz', 'libgh-1.2.0', (tree) =>
        writeFileSync(join(tree, 'README'), 'libgh 1.2.0, re-tagged upstream with other content\n'),
      );
      repack(up, 'custom/trimmed-2.0.tar.gz', 'trimmed-2.0', (tree) => writeFileSync(join(tree, 'README'), 'trimmed 2.0, changed upstream\n'));
    },
    async () => {
      changed.summary = await fetchJson(['--config', changedConfig, '--db', changed.crawl.dbFile, '--mirror', changed.mirror, '--kind', 'archive']);
      changed.report = await reportJson(changed.crawl.dbFile);
      changed.nixSummary = await fetchJson([
        '--config',
        changedConfig,
        '--db',
        changed.crawl.dbFile,
        '--mirror',
        changed.mirror,
        '--kind',
        'archive,nix',
        '--retry-failed',
      ]);
      changed.nixReport = await reportJson(changed.crawl.dbFile);
    },
  );
  // from here on, no server answers
  flat.report = await reportJson(flat.crawl.dbFile);
  all.report = await reportJson(all.crawl.dbFile);
  all.fods = fodsWithEnv(all.crawl.dbFile).map((f) => f.fod);
}, 600_000);

afterAll(async () => {
  await upstream?.close();
});

describe('issue 3: the hashed mirror alone rebuilds the url sources, offline', () => {
  test('the fetch of every url source: all mirrored but the dead and the broken one', () => {
    const s = flat.summary;
    expect(s).toMatchObject({ kinds: ['url'], nixFallback: false, dead: 1, brokenHash: 1, unverifiable: {}, skipped: { failedBefore: 0 } });
    expect(s.mirrored + s.alreadyMirrored + s.dead + s.brokenHash).toBe(s.fods);
    expect(s.mirroredBy).toEqual({ url: s.mirrored });
    expect(s.outcomes['connect']).toBeGreaterThan(0); // the dead mirror, tried first for every mirror:// URL
  });

  test("hello's url sources are realised in a fresh chroot store with no substituters, from the mirror alone", async () => {
    const hello = JSON.parse(await cli(['sources', 'hello', '--db', flat.crawl.dbFile, '--json'])) as { sources: Fod[] };
    const sources = hello.sources.filter((f) => f.kind === 'url');
    expect(sources.map((f) => f.name).sort()).toEqual(['bootstrap-tools.tar.gz', 'hello-2.12.tar.gz', 'patchutils-0.4.2.tar.gz']);
    const viaMirror = sources.find((f) => f.name === 'hello-2.12.tar.gz')!;
    expect(viaMirror.urls[0]).toMatch(/^mirror:\/\/gnu\//);
    expect(viaMirror.resolvedUrls[0]).toMatch(/^http:\/\/127\.0\.0\.1:18662\//); // its first mirror is the dead one

    const store = join(dir, 'store-hashed-mirror');
    const drvs = sources.map((f) => f.drvPath);
    importDrvs(flat.crawl.store, drvs, store);
    const r = realiseIn(store, drvs, { substituters: '', 'hashed-mirrors': `file://${flat.mirror}/tarballs/`, 'extra-sandbox-paths': flat.mirror });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').sort()).toEqual(sources.map((f) => f.outPath).sort());
    for (const f of sources) expect(existsSync(join(store, f.outPath))).toBe(true);
  });

  test('the report lists exactly the broken-hash source as broken and the dead one as dead', () => {
    const r = flat.report;
    expect(names(r.brokenHashes)).toEqual(['broken-hash-1.3.tar.gz']);
    expect(names(r.dead)).toEqual(['dead-source-1.0.tar.gz']);
    expect(r.brokenHashes[0].actual.hex).not.toBe(r.brokenHashes[0].expected.hex);
    expect(r.dead[0].urls.map((u) => u.outcome)).toEqual(expect.arrayContaining(['connect']));
    expect(r.unverifiable).toEqual([]);
    const s = r.summary;
    expect(s.fods).toBe(s.mirrored + s.brokenHash + s.dead + s.unfetched + s.unverifiable);
    expect(s.mirrored).toBe(flat.summary.mirrored + flat.summary.alreadyMirrored);
  });
});

describe('issue 4: the signed binary cache alone substitutes every FOD fodder could mirror, offline', () => {
  /** Why fodder could not mirror them, as the fixture is built. */
  const NOT_MIRRORABLE = {
    dead: ['dead-source-1.0.tar.gz'],
    broken: ['broken-hash-1.3.tar.gz'],
    // patch, vendor, hg, svn and the custom-postFetch fetchzip are built by Nix (the nix fallback)
    unverifiable: [
      ['secret-sdk-1.0.tar.gz', 'manual', 'not-exact', null], // requireFile: only a person can add it
    ],
  };
  /** What only the nix fallback can reproduce: Nix builds them with the fixture's own builders. */
  const BY_NIX = ['hello-fix-build.patch', 'hg-archive', 'rust-app-1.0-vendor', 'svnthing-r1234', 'trimmed-2.0-source'];
  const realised = new Map<string, { name: string; kind: string; ok: boolean; nixSays: string }>();

  test('the fetch summary covers every kind and adds up', () => {
    const s = all.summary;
    expect(s).toMatchObject({ nixFallback: true, dead: 1, brokenHash: 1, unverifiable: { 'not-exact': 1 }, skipped: { failedBefore: 0 } });
    expect(s.kinds).toEqual(['url', 'archive', 'git', 'hg', 'svn', 'patch', 'vendor', 'manual', 'other']);
    expect(s.mirrored + s.alreadyMirrored + s.dead + s.brokenHash + 1).toBe(s.fods);
    // fetchzip of today, of 2017 and of 2018-2022, and TeX Live's tar into $out: all reproduced natively
    expect(s.mirroredBy).toEqual({ url: expect.any(Number), archive: ARCHIVES.length - 1, git: 2, nix: BY_NIX.length });
    expect(s.byKind.archive).toEqual({
      fods: ARCHIVES.length,
      mirrored: ARCHIVES.length,
      alreadyMirrored: 0,
      dead: 0,
      brokenHash: 0,
      unverifiable: 0,
      failedBefore: 0,
    });
    for (const k of ['patch', 'vendor', 'hg', 'svn'] as const)
      expect(s.byKind[k], k).toMatchObject({ mirrored: expect.any(Number), unverifiable: 0, brokenHash: 0 });
    expect(s.byKind.git).toMatchObject({ fods: 2, mirrored: 2 });
    expect(s.published).toBe(s.mirrored);
  });

  test('the report names exactly what could not be mirrored, and why; nothing unverifiable is called broken', () => {
    const r = all.report;
    expect(names(r.dead)).toEqual(NOT_MIRRORABLE.dead);
    expect(names(r.brokenHashes)).toEqual(NOT_MIRRORABLE.broken);
    expect(r.unverifiable.map((e) => [e.fod.name, e.fod.kind, e.reason, e.plugin]).sort()).toEqual([...NOT_MIRRORABLE.unverifiable].sort());
    expect(r.summary).toMatchObject({ unfetched: 0, unverifiable: 1, brokenHash: 1, dead: 1 });
    expect(r.summary.fods).toBe(r.summary.mirrored + 3);
  });

  test("every narinfo is signed by fodder's key, one per mirrored output", () => {
    const cache = join(all.mirror, 'cache');
    const infos = readdirSync(cache).filter((n) => n.endsWith('.narinfo'));
    expect(infos.length).toBe(new Set(all.fods.map((f) => f.outPath)).size - 3);
    expect(readFileSync(join(cache, 'nix-cache-info'), 'utf8')).toMatch(/StoreDir: \/nix\/store/);
    for (const n of infos) {
      const info = parseNarInfo(readFileSync(join(cache, n), 'utf8'));
      expect(info.compression).toBe('xz');
      expect(info.sigs).toHaveLength(1);
      expect(verifyNarInfoSig(narInfoFingerprint(info), info.sigs[0], publicKey)).toBe(true);
    }
  });

  test('in a fresh chroot store with only the cache as substituter, every mirrored FOD is realised, and nothing else', () => {
    const store = join(dir, 'store-binary-cache');
    mkdirSync(store, { recursive: true });
    const byOut = new Map(all.fods.map((f) => [f.outPath, f]));
    for (const f of byOut.values()) {
      const r = realiseIn(store, [f.outPath], {
        substituters: `file://${join(all.mirror, 'cache')}`,
        'require-sigs': 'true',
        'trusted-public-keys': publicKey,
        'connect-timeout': '1',
        'hashed-mirrors': '',
      });
      realised.set(f.outPath, { name: f.name, kind: f.kind, ok: r.status === 0, nixSays: r.stderr.split('\n').filter(Boolean).pop() ?? '' });
    }
    const rows = [...realised.values()].sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
    console.log(
      `offline realisation of ${rows.length} FOD outputs from ${all.mirror}/cache:\n${rows.map((r) => `${r.ok ? 'realised    ' : 'NOT realised'}  ${r.kind.padEnd(7)} ${r.name}`).join('\n')}`,
    );
    const notRealised = rows
      .filter((r) => !r.ok)
      .map((r) => r.name)
      .sort();
    expect(notRealised).toEqual([...NOT_MIRRORABLE.dead, ...NOT_MIRRORABLE.broken, ...NOT_MIRRORABLE.unverifiable.map((u) => u[0] as string)].sort());
    const ok = (kind: string) => rows.filter((r) => r.kind === kind && r.ok).map((r) => r.name);
    expect(ok('archive')).toEqual(ARCHIVES);
    for (const n of BY_NIX) expect(rows.find((r) => r.name === n)?.ok, n).toBe(true);
    expect(ok('git')).toEqual(['libgit-2f90906', 'withsub-19fd777']);
    expect(ok('url').length).toBe(rows.filter((r) => r.kind === 'url').length - 2);
    // Nix checks each path against the content address its .drv declares
    const v = spawnSync('nix-store', ['--store', store, '--verify-path', ...[...realised].filter(([, r]) => r.ok).map(([p]) => p)], { encoding: 'utf8' });
    expect(v.status, v.stderr).toBe(0);
  });
});

describe('issue 4: an upstream archive that changed', () => {
  test('same URL, new bytes: a broken hash, with the hash of what upstream now serves', () => {
    const r = changed.report;
    expect(names(r.brokenHashes)).toEqual(['source']); // libgh, fetchFromGitHub
    const e = r.brokenHashes[0];
    expect(e.fod.kind).toBe('archive');
    expect(e.url).toMatch(/\/libgh\/archive\/v1\.2\.0\.tar\.gz$/);
    expect(e.actual.hex).toBe(changed.libghNewHash);
    expect(e.actual.hex).not.toBe(e.expected.hex);
  });

  test('a fetchzip with a custom postFetch whose archive changed too is not called broken by fodder, which cannot reproduce it', () => {
    const r = changed.report;
    expect(names(r.brokenHashes)).toEqual(['source']);
    expect(r.unverifiable.map((x) => x.fod.name)).toEqual(['trimmed-2.0-source']);
    expect(r.unverifiable[0].message).toMatch(/custom postFetch/);
    // every other archive is as it was: libgh is broken, trimmed unverifiable
    expect(changed.summary).toMatchObject({ brokenHash: 1, dead: 0, mirrored: ARCHIVES.length - 2, mirroredBy: { archive: ARCHIVES.length - 2 } });
  });

  test('with the nix fallback, Nix itself builds it and its hash mismatch is the verdict', () => {
    const r = changed.nixReport;
    expect(names(r.brokenHashes)).toEqual(['source', 'trimmed-2.0-source']);
    expect(r.unverifiable).toEqual([]);
    expect(changed.nixSummary).toMatchObject({ brokenHash: 2, dead: 0 });
  });
});
