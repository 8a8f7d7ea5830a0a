/**
 * Off the network (issue 14): a ground mirror fetched from the fixture's upstream on loopback;
 * a remote mirror holding an older subset (one attribute's sources, carried there as a tar
 * stream); `bundle create --since <remote manifest>` for another attribute carries exactly the
 * difference, object by object; after `bundle import`, a fresh chroot store with no network
 * realises every FOD of that attribute from the remote mirror's cache alone. Also: `--missing`
 * against a directory and against `fodder serve`'s URL, a flipped byte, a manifest with a bad
 * signature, volumes, and an import killed with SIGKILL then run again.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Fod } from '../src/graph/types.js';
import { BUNDLE_FORMAT, formatBundleIndex, parseBundleIndex, type BundleObject } from '../src/mirror/bundle-index.js';
import { fodder, fodderSpawn, tempDir } from './helpers/cli.js';
import { crawlFixture, startUpstream, waitPortFree } from './helpers/fixture-upstream.js';
import { filesOf, objectsFor } from './helpers/mirror-files.js';
import { startServe, type RunningService } from './helpers/service.js';

const dir = tempDir('fodder-bundle-');
const ground = join(dir, 'ground');
const remote = join(dir, 'remote');
const keys = join(dir, 'keys');
let db = '';
let groundPublic = '';

async function cli(args: string[]): Promise<string> {
  const r = await fodder(args);
  if (r.code !== 0) throw new Error(`fodder ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}
const sh = (script: string) => {
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', env: { ...process.env, CI: '1' } });
  if (r.status !== 0) throw new Error(`${script}: ${r.stderr}`);
  return r.stdout;
};
/** `bundle create libgit` from the ground mirror, the island's key trusted, `--since` a manifest. */
const createLibgit = (since: string, ...more: string[]) =>
  fodder(['bundle', 'create', 'libgit', '--db', db, '--mirror', ground, '--since', since, '--trusted-key', join(keys, 'island-1.public'), ...more]);
const sha256Of = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const sourcesOf = async (attr: string) => (JSON.parse(await cli(['sources', attr, '--db', db, '--json'])) as { sources: Fod[] }).sources;

beforeAll(async () => {
  await waitPortFree(18661);
  const k = JSON.parse(await cli(['keygen', 'ground-1', '--out', keys, '--json'])) as { secretKeyFile: string; publicKey: string };
  groundPublic = k.publicKey;
  await cli(['keygen', 'island-1', '--out', keys, '--json']);
  const crawl = await crawlFixture('x86_64-linux', { keepStore: false });
  db = crawl.dbFile;
  const config = join(dir, 'ground.yaml');
  writeFileSync(config, 'fetch:\n  cache:\n    compression: xz\n    flat: true\n');
  const upstream = await startUpstream({ port: 18661 });
  try {
    await cli([
      'fetch',
      '--config',
      config,
      '--db',
      db,
      '--mirror',
      ground,
      '--kind',
      'url,archive,git',
      '--sign-key',
      k.secretKeyFile,
      '--retries',
      '0',
      '--connect-timeout',
      '2',
      '--no-progress',
    ]);
  } finally {
    await upstream.close();
  }
  // the island's mirror holds an older subset: libgh's sources, carried as a tar stream
  sh(`node dist/src/cli/main.js bundle create libgh --db ${db} --mirror ${ground} --out - | node dist/src/cli/main.js bundle import - --mirror ${remote}`);
}, 600_000);

describe('what a mirror lacks', () => {
  let serve: RunningService | null = null;
  afterAll(async () => {
    serve?.proc.kill('SIGTERM');
    await serve?.proc;
  });

  test('--missing gives the same answer for the directory and for `fodder serve`', async () => {
    const args = ['sources', 'libgit', '--db', db, '--missing', '--json'];
    const byDir = JSON.parse(await cli([...args, '--mirror', remote])) as { missing: { fod: Fod; size: number | null }[]; have: number; lack: number };
    const config = join(dir, 'serve.yaml');
    writeFileSync(config, `db: ${join(dir, 'serve.db')}\nfetch:\n  mirror: ${remote}\nservice:\n  listen: 127.0.0.1:0\n  schedule: null\n`);
    serve = await startServe(config);
    const byUrl = JSON.parse(await cli([...args, '--mirror', serve.url])) as typeof byDir & { mirror: string };
    expect({ ...byUrl, mirror: '' }).toEqual({ ...byDir, mirror: '' });
    // libgh brought bootstrap-tools; git, nss-cacert and the libgit checkout are lacking, with the sizes the fetch recorded
    expect(byDir.missing.map((m) => m.fod.name).sort()).toEqual(['git-2.44.0.tar.gz', 'libgit-2f90906', 'nss-cacert-3.98.tar.gz']);
    expect(byDir.have).toBe(1);
    for (const m of byDir.missing) expect(m.size).toBeGreaterThan(0);
    const text = await cli(['sources', 'libgit', '--db', db, '--missing', '--mirror', remote]);
    expect(text).toMatch(/have 1, lack 3 \(0 of unknown size\); .* to move/);
  });

  test('fods --missing against the ground mirror lacks exactly what could not be fetched there', async () => {
    const r = JSON.parse(await cli(['fods', '--db', db, '--kind', 'url', '--missing', '--mirror', ground, '--json'])) as { missing: { fod: Fod }[] };
    expect(r.missing.map((m) => m.fod.name)).toEqual(expect.arrayContaining(['dead-source-1.0.tar.gz', 'broken-hash-1.3.tar.gz']));
  });
});

describe('bundles', () => {
  const manifest = join(dir, 'island.json');
  const b1 = join(dir, 'b1');

  test('the manifest lists what the island holds, signed with its key', async () => {
    await cli(['manifest', '--mirror', remote, '--sign-key', join(keys, 'island-1.secret'), '--out', manifest]);
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as { key: string; cache: unknown[]; tarballs: unknown[] };
    expect(m.key).toBe('island-1');
    const libgh = await sourcesOf('libgh');
    // each source's entry, and a flat source's narinfo whose NAR is made from its tarball besides its NAR copy (flat: true)
    expect(m.cache.length).toBe(libgh.length + libgh.filter((f) => f.hash.mode === 'flat').length);
    expect(m.tarballs.length).toBe(libgh.filter((f) => f.hash.mode === 'flat').length);
  });

  test('a manifest with a bad signature, or unsigned while a key is trusted, is refused, naming the file', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(
      bad,
      readFileSync(manifest, 'utf8').replace(/"cache": \[\n {4}\["./, (s) => s.slice(0, -1) + (s.endsWith('0') ? '1' : '0')),
    );
    const r = await createLibgit(bad, '--dry-run');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`[MANIFEST_INVALID]: manifest ${bad}: its signature by "island-1" does not verify`);
    const unsigned = join(dir, 'unsigned.json');
    await cli(['manifest', '--mirror', remote, '--out', unsigned]);
    const u = await createLibgit(unsigned, '--dry-run');
    expect(u.stderr).toContain(`manifest ${unsigned}: unsigned`);
    const notJson = join(dir, 'not.json');
    writeFileSync(notJson, '{"format":');
    expect((await fodder(['bundle', 'create', 'libgit', '--db', db, '--mirror', ground, '--since', notJson, '--dry-run'])).stderr).toContain(
      `manifest ${notJson}: not readable as JSON`,
    );
  });

  test('bundle create --since carries exactly what the island lacks of the target, object by object', async () => {
    const dry = (await createLibgit(manifest, '--dry-run')).stdout;
    expect((await createLibgit(manifest, '--out', b1)).code).toBe(0);
    const expected = new Set((await sourcesOf('libgit')).flatMap((f) => objectsFor(ground, f)).filter((p) => !existsSync(join(remote, p))));
    const index = parseBundleIndex(readFileSync(join(b1, 'bundle.json'), 'utf8'), 'b1');
    expect(new Set(index.objects.map((o) => o.path))).toEqual(expected);
    expect(filesOf(b1)).toEqual(expected);
    for (const p of expected) expect(readFileSync(join(b1, p)).equals(readFileSync(join(ground, p))), p).toBe(true);
    const bytes = index.objects.reduce((n, o) => n + o.size, 0);
    expect(dry).toContain(`${expected.size} objects`);
    expect(dry).toContain(`(${bytes} bytes)`);
  });

  test('after the import, a fresh chroot store with no network realises every FOD of the target from the island mirror alone', async () => {
    const r = await fodder(['bundle', 'import', b1, '--mirror', remote, '--trusted-key', join(keys, 'ground-1.public'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { refused: unknown[]; imported: number };
    expect(result.refused).toEqual([]);
    const store = join(dir, 'island-store');
    mkdirSync(store, { recursive: true });
    const fods = await sourcesOf('libgit');
    expect(fods.map((f) => f.kind).sort()).toEqual(['git', 'url', 'url', 'url']);
    for (const f of fods) {
      const n = spawnSync(
        'nix-store',
        [
          '--store',
          store,
          '--option',
          'substituters',
          `file://${join(remote, 'cache')}`,
          '--option',
          'require-sigs',
          'true',
          '--option',
          'trusted-public-keys',
          groundPublic,
        ].concat(['--option', 'connect-timeout', '1', '--option', 'hashed-mirrors', '', '--realise', f.outPath]),
        { encoding: 'utf8', timeout: 120_000 },
      );
      expect(n.status, `${f.name}: ${n.stderr}`).toBe(0);
    }
    const v = spawnSync('nix-store', ['--store', store, '--verify-path', ...fods.map((f) => f.outPath)], { encoding: 'utf8' });
    expect(v.status, v.stderr).toBe(0);
    // a second import of the same bundle touches nothing
    const again = JSON.parse(await cli(['bundle', 'import', b1, '--mirror', remote, '--json'])) as { imported: number; present: number };
    expect(again).toMatchObject({ imported: 0, present: result.imported });
  });

  test('a bundle with flipped bytes: those objects are refused (and the narinfos that need them), the rest imported', async () => {
    const b2 = join(dir, 'b2');
    await cli(['bundle', 'create', 'withsub', '--db', db, '--mirror', ground, '--out', b2, '--no-progress']);
    const indexFile = join(b2, 'bundle.json');
    const index = parseBundleIndex(readFileSync(indexFile, 'utf8'), 'b2');
    const fods = await sourcesOf('withsub');
    const named = (name: string) =>
      objectsFor(
        ground,
        fods.find((f) => f.name === name)!,
      );
    const rewrite = (path: string, edit: (b: Buffer) => Buffer) => {
      const file = join(b2, path);
      sh(`chmod u+w ${file}`);
      writeFileSync(file, edit(readFileSync(file)));
    };
    const flip = (b: Buffer) => ((b[b.length >> 1] ^= 0x01), b);
    // a NAR file: its narinfo needs it
    const [narinfo, nar] = named('withsub-19fd777').slice(-2);
    rewrite(nar, flip);
    // a flat source's tarball: its flat narinfo needs it, its NAR copy (flat: true) does not
    const [gitTarball, , , gitFlat] = named('git-2.44.0.tar.gz');
    rewrite(gitTarball, flip);
    // a flat narinfo whose NAR is not its tarball's, listed so in the index (a ground that wrote it wrong)
    const cacertFlat = named('nss-cacert-3.98.tar.gz').find((p) => p.startsWith('cache/flat/'))!;
    rewrite(cacertFlat, (b) => Buffer.from(b.toString().replace(/^NarSize: (\d+)$/m, (_, n: string) => `NarSize: ${Number(n) + 8}`)));
    // and one whose NarHash is another's (its size right): checked against the NAR hashed as its tarball was copied in
    const otherFlat = index.objects.find((x) => x.path.startsWith('cache/flat/') && x.path !== cacertFlat && x.path !== gitFlat)!.path;
    rewrite(otherFlat, (b) => Buffer.from(b.toString().replace(/^NarHash: sha256:(\w+)$/m, `NarHash: sha256:${'0'.repeat(52)}`)));
    for (const path of [cacertFlat, otherFlat]) {
      const text = readFileSync(join(b2, path));
      const o = index.objects.find((x) => x.path === path)!;
      Object.assign(o, { size: text.length, sha256: createHash('sha256').update(text).digest('hex') });
    }
    writeFileSync(indexFile, formatBundleIndex(index));

    const fresh = join(dir, 'fresh');
    const r = await fodder(['bundle', 'import', b2, '--mirror', fresh, '--json', '--no-progress']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('[BUNDLE_REFUSED]');
    const result = JSON.parse(r.stdout) as { refused: { path: string; reason: string }[]; imported: number };
    const refused = [nar, narinfo, gitTarball, gitFlat, cacertFlat, otherFlat];
    expect(result.refused.map((x) => x.path).sort()).toEqual([...refused].sort());
    const reason = (p: string) => result.refused.find((x) => x.path === p)!.reason;
    expect(reason(nar)).toMatch(/^corrupt: content has sha256/);
    expect(reason(gitTarball)).toMatch(/^corrupt: content has sha256/);
    expect(reason(gitFlat)).toMatch(/^its tarballs\/sha256\/[0-9a-f]{64} is not in the mirror$/);
    expect(reason(cacertFlat)).toMatch(/^the NAR of tarballs\/sha256\/[0-9a-f]{64} is sha256:[0-9a-f]{64}, \d+ bytes; the narinfo says/);
    expect(reason(otherFlat)).toMatch(/^the NAR of tarballs\/sha256\/[0-9a-f]{64} is sha256:[0-9a-f]{64}, \d+ bytes; the narinfo says sha256:0{64}, /);
    expect(result.imported).toBe(index.objects.length - refused.length);
    for (const p of refused) expect(existsSync(join(fresh, p)), p).toBe(false);
    for (const x of index.objects.filter((x) => !refused.includes(x.path))) expect(existsSync(join(fresh, x.path)), x.path).toBe(true);

    // the ground's key trusted (docs/offgrid.md's set-up): the same objects refused for the same
    // reasons, every narinfo's signature checked besides; and the same from a tar file
    const signed = join(dir, 'fresh-signed');
    const t = await fodder(['bundle', 'import', b2, '--mirror', signed, '--trusted-key', join(keys, 'ground-1.public'), '--json']);
    expect(t.code, t.stderr).toBe(1);
    const withKey = JSON.parse(t.stdout) as { refused: { path: string; reason: string }[]; imported: number };
    const byPath = (a: { path: string }, b: { path: string }) => a.path.localeCompare(b.path);
    expect([...withKey.refused].sort(byPath)).toEqual([...result.refused].sort(byPath));
    expect(withKey.imported).toBe(result.imported);
    // what went in is what the ground holds, under every name
    for (const x of index.objects.filter((x) => !refused.includes(x.path))) {
      expect(readFileSync(join(signed, x.path)).equals(readFileSync(join(ground, x.path))), x.path).toBe(true);
    }
    const tarFile = join(dir, 'b2.tar');
    sh(`tar -cf ${tarFile} -C ${b2} bundle.json tarballs cache`);
    const tt = await fodder(['bundle', 'import', tarFile, '--mirror', join(dir, 'fresh-signed-tar'), '--trusted-key', join(keys, 'ground-1.public'), '--json']);
    const fromTar = JSON.parse(tt.stdout) as { refused: { path: string; reason: string }[]; imported: number };
    expect([...fromTar.refused].sort(byPath)).toEqual([...withKey.refused].sort(byPath));
    expect(fromTar.imported).toBe(result.imported);
  });

  test('with a key trusted, a narinfo without a good signature by it is refused, and nothing else', async () => {
    const bf = join(dir, 'b-forged');
    await cli(['bundle', 'create', 'withsub', '--db', db, '--mirror', ground, '--out', bf]);
    const indexFile = join(bf, 'bundle.json');
    const index = parseBundleIndex(readFileSync(indexFile, 'utf8'), 'b-forged');
    const narinfos = index.objects.filter((o) => o.type === 'narinfo');
    // one narinfo's signature made another store path's (its text otherwise intact, the index updated)
    const forged = narinfos[0];
    const base = (o: BundleObject) => o.path.slice(o.path.lastIndexOf('/') + 1);
    const donor = narinfos.find((o) => base(o) !== base(forged))!;
    const sigOf = (path: string) => /^Sig: (.*)$/m.exec(readFileSync(join(bf, path), 'utf8'))![1];
    const file = join(bf, forged.path);
    sh(`chmod u+w ${file}`);
    writeFileSync(file, readFileSync(file, 'utf8').replace(/^Sig: .*$/m, `Sig: ${sigOf(donor.path)}`));
    const text = readFileSync(file);
    Object.assign(forged, { size: text.length, sha256: createHash('sha256').update(text).digest('hex') });
    writeFileSync(indexFile, formatBundleIndex(index));

    const ground1 = await fodder(['bundle', 'import', bf, '--mirror', join(dir, 'key-ground'), '--trusted-key', join(keys, 'ground-1.public'), '--json']);
    expect(ground1.code, ground1.stdout + ground1.stderr).toBe(1);
    const r1 = JSON.parse(ground1.stdout) as { refused: { path: string; reason: string }[]; imported: number };
    expect(r1.refused).toEqual([{ path: forged.path, reason: 'not signed by a trusted key' }]);
    expect(r1.imported).toBe(index.objects.length - 1);
    // trusting only another key: every narinfo refused, every file imported
    const other = await fodder(['bundle', 'import', bf, '--mirror', join(dir, 'key-other'), '--trusted-key', join(keys, 'island-1.public'), '--json']);
    const r2 = JSON.parse(other.stdout) as { refused: { path: string; reason: string }[]; imported: number };
    expect(r2.refused.map((x) => x.path).sort()).toEqual(narinfos.map((o) => o.path).sort());
    expect(new Set(r2.refused.map((x) => x.reason))).toEqual(new Set(['not signed by a trusted key']));
    expect(r2.imported).toBe(index.objects.length - narinfos.length);
  });

  test('volumes: no volume over the size, each object in one, imported from the volume directories', async () => {
    const b3 = join(dir, 'b3');
    const base = ['bundle', 'create', '--db', db, '--mirror', ground, '--kind', 'url'];
    const whole = JSON.parse(await cli([...base, '--dry-run', '--json'])) as { bytes: number; largest: number };
    const size = Math.max(whole.largest, Math.ceil(whole.bytes / 3));
    const all = JSON.parse(await cli([...base, '--volume-size', String(size), '--out', b3, '--json'])) as {
      volumes: { objects: number; bytes: number }[];
      objects: number;
    };
    expect(all.volumes.length).toBeGreaterThanOrEqual(3);
    for (const v of all.volumes) expect(v.bytes).toBeLessThanOrEqual(size);
    const vols = readdirSync(b3).sort();
    expect(vols).toEqual(all.volumes.map((_, i) => `volume-${i + 1}`).sort());
    const into = join(dir, 'from-volumes');
    const r = JSON.parse(await cli(['bundle', 'import', b3, '--mirror', into, '--json'])) as { imported: number; refused: unknown[] };
    expect(r).toMatchObject({ imported: all.objects, refused: [] });
    // the same directory used again for one volume: the volumes of the earlier bundle go
    await cli([...base, '--out', b3]);
    expect(readdirSync(b3).filter((n) => n.startsWith('volume-'))).toEqual([]);
    const once = JSON.parse(await cli(['bundle', 'import', b3, '--mirror', join(dir, 'from-one'), '--json'])) as { imported: number; refused: unknown[] };
    expect(once).toMatchObject({ imported: all.objects, refused: [] });
    // a killed run: no index yet, some objects not copied, a half copy in .incoming/; run again, it finishes
    const b4 = join(dir, 'b4');
    const made = JSON.parse(await cli([...base, '--out', b4, '--json'])) as { objects: number };
    const index = parseBundleIndex(readFileSync(join(b4, 'bundle.json'), 'utf8'), 'b4');
    const gone = index.objects.filter((_, i) => i % 3 === 0).map((o) => o.path);
    sh(`cd ${b4} && rm bundle.json ${gone.join(' ')} && mkdir -p .incoming && head -c 100 /dev/urandom > .incoming/0123456789abcdef`);
    const rerun = JSON.parse(await cli([...base, '--out', b4, '--json'])) as { objects: number };
    expect(made.objects).toBeGreaterThan(3);
    expect(rerun.objects).toBe(made.objects);
    expect(readdirSync(b4).sort()).toEqual(['bundle.json', 'cache', 'tarballs']);
    for (const o of index.objects)
      expect(
        createHash('sha256')
          .update(readFileSync(join(b4, o.path)))
          .digest('hex'),
        o.path,
      ).toBe(sha256Of(join(ground, o.path)));
    const fromRerun = JSON.parse(await cli(['bundle', 'import', b4, '--mirror', join(dir, 'from-rerun'), '--json'])) as {
      imported: number;
      refused: unknown[];
    };
    expect(fromRerun).toMatchObject({ imported: made.objects, refused: [] });
    const intoMirror = await fodder([...base, '--out', ground]);
    expect(intoMirror.code).toBe(2);
    expect(intoMirror.stderr).toContain(`--out ${ground} is a mirror`);
    const tooSmall = await fodder(['bundle', 'create', '--db', db, '--mirror', ground, '--kind', 'url', '--volume-size', '10', '--dry-run']);
    expect(tooSmall.stderr).toMatch(/\[VOLUME_TOO_SMALL\]: .* needs \d+ bytes, more than a volume of 10/);
  });
});

describe('an import killed with SIGKILL', () => {
  test('run again, it finishes: every object in, verified, no temporary file left', async () => {
    const b = join(dir, 'big');
    const objects: BundleObject[] = [];
    for (let i = 0; i < 40; i++) {
      const data = randomBytes(3 << 20);
      const hex = createHash('sha256').update(data).digest('hex');
      mkdirSync(join(b, 'tarballs', 'sha256'), { recursive: true });
      writeFileSync(join(b, 'tarballs', 'sha256', hex), data);
      objects.push({ type: 'tarball', path: `tarballs/sha256/${hex}`, size: data.length });
    }
    writeFileSync(join(b, 'bundle.json'), formatBundleIndex({ format: BUNDLE_FORMAT, createdAt: new Date().toISOString(), volume: null, volumes: 1, objects }));
    const into = join(dir, 'killed');
    const p = fodderSpawn(['bundle', 'import', b, '--mirror', into]);
    const tmp = join(into, 'tmp');
    const journal = () => (existsSync(tmp) ? readdirSync(tmp).find((n) => n.endsWith('.journal')) : undefined);
    for (let i = 0; i < 2000 && !journal(); i++) await new Promise((r) => setTimeout(r, 5));
    p.kill('SIGKILL');
    const first = await p;
    expect(first.signal).toBe('SIGKILL');
    const before = objects.filter((o) => existsSync(join(into, o.path))).length;
    expect(before).toBeLessThan(objects.length);
    const r = JSON.parse(await cli(['bundle', 'import', b, '--mirror', into, '--json'])) as { imported: number; present: number; refused: unknown[] };
    expect(r.refused).toEqual([]);
    expect(r.imported + r.present).toBe(objects.length);
    for (const o of objects) expect(existsSync(join(into, o.path))).toBe(true);
    expect(readdirSync(join(tmp, 'import'))).toEqual([]);
    expect(journal()).toBeUndefined();
    const v = JSON.parse(await cli(['verify', '--mirror', into, '--json'])) as { files: number; corrupt: unknown[] };
    expect(v).toMatchObject({ files: objects.length, corrupt: [] });
  }, 120_000);
});
