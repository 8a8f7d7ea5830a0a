/**
 * Off-grid end to end (issue 14), through the CLI with the commands and configs docs/offgrid.md
 * gives: a ground mirror crawled and fetched from the fixture's upstream on loopback (flat
 * sources published as `cache/flat/` narinfos, their NARs made on the fly); an island mirror
 * holding an older subset (what the `minimal.nix` NixOS configuration needs, carried there by
 * an earlier bundle); `fodder manifest` of the island; `bundle create --nixos-config
 * openssh.nix --since <manifest>` carries exactly the difference, object by object, on a
 * machine with no database; after `bundle import`, a fresh chroot store with no network
 * realises every FOD of that configuration with `fodder serve` on the island mirror as its only
 * substituter; `--missing` gives the same list for the mirror's directory and its served URL,
 * before the import (what the bundle brings) and after (nothing).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { realiseIn } from './helpers/nix.js';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Fod } from '../src/graph/types.js';
import { parseBundleIndex } from '../src/mirror/bundle-index.js';
import type { MissingAnswer } from '../src/query/missing.js';
import { FIXTURE, ROOT, fodder, tempDir } from './helpers/cli.js';
import { startUpstream, waitPortFree } from './helpers/fixture-upstream.js';
import { filesOf, objectsFor } from './helpers/mirror-files.js';
import { startServe, type RunningService } from './helpers/service.js';

const dir = tempDir('fodder-offgrid-');
const ground = join(dir, 'ground');
const island = join(dir, 'island');
const keys = join(dir, 'keys');
const groundYaml = join(dir, 'ground.yaml');
const islandYaml = join(dir, 'island.yaml');
const CONFIGS = join(ROOT, 'test', 'fixtures', 'nixos-configs');
/** the configuration of this season, and the one the island was built for before */
const SSHBOX = ['--nixos-config', join(CONFIGS, 'openssh.nix'), '--nixpkgs', FIXTURE];
const MINIMAL = ['--nixos-config', join(CONFIGS, 'minimal.nix'), '--nixpkgs', FIXTURE];
let groundPublic = '';
let serve: RunningService | null = null;

async function cli(args: string[]): Promise<string> {
  const r = await fodder(args);
  if (r.code !== 0) throw new Error(`fodder ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}
const sourcesOf = async (target: string[]) => (JSON.parse(await cli(['sources', ...target, '--json'])) as { sources: Fod[] }).sources;
const missing = async (mirror: string, config = islandYaml) =>
  JSON.parse(await cli(['sources', ...SSHBOX, '--missing', '--mirror', mirror, '--config', config, '--json'])) as MissingAnswer;

beforeAll(async () => {
  await waitPortFree(18662); // the fixture's dead mirror must stay dead
  groundPublic = (JSON.parse(await cli(['keygen', 'ground-1', '--out', keys, '--json'])) as { publicKey: string }).publicKey;
  const islandPublic = (JSON.parse(await cli(['keygen', 'island-1', '--out', keys, '--json'])) as { publicKey: string }).publicKey;
  const sandbox = ['/bin', '/usr', '/lib', '/lib64'].filter((p) => existsSync(p)).join(' ');
  // the ground: crawls and fetches (the nix fallback builds the patch), publishes signed; no NAR copies of flat sources
  writeFileSync(
    groundYaml,
    `nixpkgs: ${FIXTURE}
systems: [x86_64-linux]
variants: { default: {} }
db: ${join(dir, 'ground.db')}
fetch:
  mirror: ${ground}
  kinds: [url, archive, git, patch]
  retries: 0
  connectTimeoutSec: 2
  cache:
    secretKeyFile: ${join(keys, 'ground-1.secret')}
  nix:
    enabled: true
    store: ${join(dir, 'build-store')}
    options: { substituters: '', connect-timeout: '2', sandbox-paths: '${sandbox}' }
bundle:
  trustedKeys: ["${islandPublic}"]
`,
  );
  // the island: imports, signs its manifests, serves; never fetches
  writeFileSync(
    islandYaml,
    `db: ${join(dir, 'island.db')}
fetch:
  mirror: ${island}
  cache:
    secretKeyFile: ${join(keys, 'island-1.secret')}
bundle:
  trustedKeys: ["${groundPublic}"]
service:
  listen: 127.0.0.1:0
  schedule: null
`,
  );
  await cli(['crawl', '--config', groundYaml]);
  const upstream = await startUpstream({ port: 18661 });
  try {
    await cli(['fetch', '--config', groundYaml, '--no-progress']);
  } finally {
    await upstream.close();
  }
  // last season's parcel: what the minimal configuration needs
  const first = join(dir, 'parcel-0');
  await cli(['bundle', 'create', ...MINIMAL, '--config', groundYaml, '--out', first]);
  await cli(['bundle', 'import', first, '--config', islandYaml]);
  serve = await startServe(islandYaml);
}, 300_000);

afterAll(async () => {
  serve?.proc.kill('SIGTERM');
  await serve?.proc;
});

describe('a season on the Kerguelen Islands', () => {
  const manifest = join(dir, 'island-manifest.json');
  const parcel = join(dir, 'parcel');

  test('before the parcel: --missing lists the same sources for the mirror directory and its served URL, sizes from the ground database', async () => {
    const byDir = await missing(island);
    const byUrl = await missing(serve!.url);
    expect({ ...byUrl, mirror: '' }).toEqual({ ...byDir, mirror: '' });
    const sshbox = await sourcesOf(SSHBOX);
    const minimal = new Set((await sourcesOf(MINIMAL)).map((f) => f.outPath));
    expect(byDir.have).toBe(minimal.size);
    expect(byDir.missing.map((m) => m.fod.outPath).sort()).toEqual(
      sshbox
        .map((f) => f.outPath)
        .filter((p) => !minimal.has(p))
        .sort(),
    );
    expect(byDir.unknownSize).toBe(byDir.lack); // the island has no fetch records
    // on the ground, the sizes the fetch recorded, found through the sources' .drv files
    const sized = await missing(island, groundYaml);
    expect(sized.missing.map((m) => m.fod.outPath)).toEqual(byDir.missing.map((m) => m.fod.outPath));
    for (const m of sized.missing) expect(m.size, m.fod.name).toBeGreaterThan(0);
    expect(sized.unknownSize).toBe(0);
    const byDb = JSON.parse(await cli(['sources', ...SSHBOX, '--missing', '--mirror', island, '--db', join(dir, 'ground.db'), '--json'])) as MissingAnswer;
    expect(byDb.missing).toEqual(sized.missing);
  });

  test('the manifest lists what the island holds, flat narinfos included, signed with its key', async () => {
    await cli(['manifest', '--config', islandYaml, '--out', manifest]);
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as { key: string; cache: [string, string, string, number][]; tarballs: unknown[] };
    expect(m.key).toBe('island-1');
    const minimal = await sourcesOf(MINIMAL);
    expect(m.tarballs.length).toBe(minimal.length);
    expect(m.cache.map((c) => c[2].startsWith('nar/flat/'))).toEqual(minimal.map(() => true));
  });

  test('bundle create --since carries exactly what the island lacks, object by object, with no database', async () => {
    const noDb = join(dir, 'carry.yaml');
    writeFileSync(noDb, readFileSync(groundYaml, 'utf8').replace(/^db: .*$/m, `db: ${join(dir, 'absent.db')}`));
    const summary = JSON.parse(await cli(['bundle', 'create', ...SSHBOX, '--since', manifest, '--config', noDb, '--out', parcel, '--json'])) as {
      objects: number;
      remoteHas: number;
      groundLacks: string[];
    };
    expect(existsSync(join(dir, 'absent.db'))).toBe(false);
    const sshbox = await sourcesOf(SSHBOX);
    expect(summary.groundLacks).toEqual([]);
    const expected = new Set(sshbox.flatMap((f) => objectsFor(ground, f)).filter((p) => !existsSync(join(island, p))));
    // every lacking source: its tarball and the narinfo the island's service makes its NAR from
    expect([...expected].filter((p) => p.startsWith('cache/flat/')).length).toBe(sshbox.length - summary.remoteHas);
    const index = parseBundleIndex(readFileSync(join(parcel, 'bundle.json'), 'utf8'), 'parcel');
    expect(new Set(index.objects.map((o) => o.path))).toEqual(expected);
    expect(filesOf(parcel)).toEqual(expected);
    for (const p of expected) expect(readFileSync(join(parcel, p)).equals(readFileSync(join(ground, p))), p).toBe(true);
    expect(summary.objects).toBe(expected.size);
  });

  test('after the import, a fresh chroot store with no network realises every FOD from `fodder serve` on the island alone', async () => {
    const r = await fodder(['bundle', 'import', parcel, '--config', islandYaml, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { refused: unknown[] }).refused).toEqual([]);
    const store = join(dir, 'island-store');
    mkdirSync(store, { recursive: true });
    const fods = await sourcesOf(SSHBOX);
    expect(fods.map((f) => f.kind).sort()).toEqual(['patch', 'url', 'url', 'url', 'url', 'url', 'url']);
    const options = {
      substituters: serve!.url,
      'trusted-public-keys': groundPublic,
      'require-sigs': 'true',
      'hashed-mirrors': `${serve!.url}/tarballs/`,
      'connect-timeout': '1',
    };
    const n = realiseIn(
      store,
      fods.map((f) => f.outPath),
      options,
    );
    expect(n.status, n.stderr).toBe(0);
    const v = spawnSync('nix-store', ['--store', store, '--verify-path', ...fods.map((f) => f.outPath)], { encoding: 'utf8' });
    expect(v.status, v.stderr).toBe(0);
  });

  test('after the import, --missing says the island lacks nothing, for the directory and the served URL', async () => {
    for (const where of [island, serve!.url]) expect(await missing(where)).toMatchObject({ lack: 0, have: 7, missing: [] });
  });

  test('a tarball the island holds without its narinfo: only the narinfo goes (on the same disk), and is admitted', async () => {
    const xz = (await sourcesOf(MINIMAL)).find((f) => f.name.startsWith('xz-'))!;
    expect(xz.hash.algo).toBe('sha512'); // its narinfo's NAR is made from tarballs/sha256/, the same file
    const narinfo = objectsFor(island, xz).find((p) => p.startsWith('cache/flat/'))!;
    rmSync(join(island, narinfo));
    const since = join(dir, 'island-manifest-2.json');
    await cli(['manifest', '--config', islandYaml, '--out', since]);
    // on the disk of the last parcel: what that one held and this one does not goes
    await cli(['bundle', 'create', ...SSHBOX, '--since', since, '--config', groundYaml, '--out', parcel]);
    expect(filesOf(parcel)).toEqual(new Set([narinfo]));
    const r = JSON.parse(await cli(['bundle', 'import', parcel, '--config', islandYaml, '--json'])) as { imported: number; refused: unknown[] };
    expect(r).toMatchObject({ imported: 1, refused: [] });
    expect(readFileSync(join(island, narinfo)).equals(readFileSync(join(ground, narinfo)))).toBe(true);
  });
});
