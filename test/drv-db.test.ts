/**
 * A crawl without --store: Nix writes the .drv files into the crawl's scratch directory, and the
 * database keeps each .drv's text and each input source. Judged by Nix: a plain nix-instantiate
 * of the same attributes into a chroot store writes exactly those files, and what the database
 * holds imports into a fresh Nix store as the same closures.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURE, fodder, tempDir } from './helpers/cli.js';
import { openDb, type Db } from '../src/db/open.js';
import { createClosureReader } from '../src/db/fods.js';
import { exportArchive } from '../src/nix-formats/drv-export.js';

const SYSTEM = 'x86_64-linux';
let db: Db;
let chroot: string;
/** the attributes the crawl recorded as derivations, and their drvPaths */
let attrs: { path: string[]; drvPath: string }[];

const nixStore = (store: string, args: string[], input?: Buffer) =>
  execFileSync('nix-store', ['--store', store, ...args], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 1 << 28 });
const storeFiles = (root: string) =>
  readdirSync(join(root, 'nix', 'store'))
    .filter((n) => !n.startsWith('.'))
    .map((n) => `/nix/store/${n}`);

beforeAll(async () => {
  const dir = tempDir('fodder-drvdb-');
  const dbFile = join(dir, 'fodder.db');
  const r = await fodder(['crawl', '--nixpkgs', FIXTURE, '--system', SYSTEM, '--variant', 'default', '--db', dbFile, '--json']);
  expect(r.code, r.stderr).toBe(0);
  db = openDb(dbFile, { readonly: true });
  attrs = (db.prepare(`SELECT path_json, drv_path FROM attrs WHERE status = 'drv'`).all() as { path_json: string; drv_path: string }[]).map((a) => ({
    path: JSON.parse(a.path_json) as string[],
    drvPath: a.drv_path,
  }));

  // the judge: Nix itself instantiates every one of those attributes into a chroot store
  chroot = join(dir, 'chroot');
  const expr = `
    let pkgs = import ${FIXTURE} { system = "${SYSTEM}"; };
    in map (p: (builtins.foldl' (v: n: v.\${n}) pkgs p).drvPath) (builtins.fromJSON ${JSON.stringify(JSON.stringify(attrs.map((a) => a.path)))})`;
  const out = execFileSync('nix-instantiate', ['--store', chroot, '--eval', '--strict', '--json', '--read-write-mode', '-E', expr], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  expect(JSON.parse(out)).toEqual(attrs.map((a) => a.drvPath));
}, 300_000);

describe('the database holds what Nix wrote', () => {
  test('every .drv Nix writes for those attributes, byte for byte, and no other', () => {
    const drvs = storeFiles(chroot).filter((p) => p.endsWith('.drv'));
    expect(drvs.length).toBeGreaterThan(100);
    const text = db.prepare(`SELECT text FROM drv_texts WHERE drv_path = ?`).pluck();
    for (const p of drvs) expect(text.get(p), p).toBe(readFileSync(join(chroot, p), 'utf8'));
    const ours = db.prepare(`SELECT drv_path FROM drv_texts`).pluck().all() as string[];
    expect(new Set(ours)).toEqual(new Set(drvs));
  });

  test('every input source, as its NAR, with its references', () => {
    const sources = storeFiles(chroot).filter((p) => !p.endsWith('.drv'));
    // builder scripts, the fetchers' builder.sh, a builtins.toFile list of mirrors
    expect(sources.length).toBeGreaterThan(3);
    const row = db.prepare(`SELECT nar, references_json FROM store_sources WHERE path = ?`);
    for (const p of sources) {
      const ours = row.get(p) as { nar: Buffer; references_json: string } | undefined;
      expect(ours, p).toBeDefined();
      const nar = execFileSync('nix', ['--extra-experimental-features', 'nix-command', 'store', 'dump-path', '--store', chroot, p], { maxBuffer: 1 << 26 });
      expect(Buffer.compare(ours!.nar, nar), p).toBe(0);
      const refs = nixStore(chroot, ['--query', '--references', p]).split('\n').filter(Boolean);
      expect((JSON.parse(ours!.references_json) as string[]).sort(), p).toEqual(refs.sort());
    }
    expect(db.prepare(`SELECT COUNT(*) FROM store_sources`).pluck().get()).toBe(sources.length);
  });
});

describe('a worker that empties its scratch drv store after every shard', () => {
  test('records the same derivations, texts, sources and attributes', async () => {
    const dir = tempDir('fodder-drvdb-');
    writeFileSync(join(dir, 'fodder.yaml'), 'limits:\n  scratchDrvs: 1\n');
    const r = await fodder(
      [
        'crawl',
        '--config',
        join(dir, 'fodder.yaml'),
        '--nixpkgs',
        FIXTURE,
        '--system',
        SYSTEM,
        '--variant',
        'default',
        '--db',
        join(dir, 'fodder.db'),
        '--json',
      ],
      { env: { FODDER_TIMINGS: '1' } },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/pruned the scratch drv store/);
    const pruned = openDb(join(dir, 'fodder.db'), { readonly: true });
    for (const sql of [
      `SELECT * FROM drv_texts ORDER BY drv_path`,
      `SELECT * FROM store_sources ORDER BY path`,
      `SELECT * FROM drvs ORDER BY drv_path`,
      `SELECT * FROM fods ORDER BY drv_path`,
      `SELECT path, status, drv_path, error FROM attrs ORDER BY path`,
    ])
      expect(pruned.prepare(sql).all(), sql).toEqual(db.prepare(sql).all());
    pruned.close();
  }, 120_000);
});

describe('the database makes a closure valid in a fresh store', () => {
  test('nix-store --import takes what the database holds, and Nix sees the same closures', () => {
    const closureOf = createClosureReader(db);
    const fresh = join(tempDir('fodder-drvdb-'), 'store');
    // a package with a long closure (the bootstrap chain, fetchers, input sources) and a plain FOD
    const pkg = attrs.find((a) => a.path.join('.') === 'hello')!;
    const fod = db.prepare(`SELECT drv_path FROM fods WHERE kind = 'url' LIMIT 1`).pluck().get() as string;
    for (const drvPath of [pkg.drvPath, fod]) {
      const entries = closureOf(drvPath);
      expect(entries, drvPath).not.toBeNull();
      const imported = nixStore(fresh, ['--import'], exportArchive(entries!)).split('\n').filter(Boolean);
      expect(imported).toEqual(entries!.map((e) => e.path));
      const want = nixStore(chroot, ['-qR', drvPath]).split('\n').filter(Boolean).sort();
      expect(nixStore(fresh, ['-qR', drvPath]).split('\n').filter(Boolean).sort()).toEqual(want);
      for (const p of want.filter((x) => x.endsWith('.drv'))) expect(readFileSync(join(fresh, p), 'utf8')).toBe(readFileSync(join(chroot, p), 'utf8'));
    }
  });

  test('a closure with a part the database lacks is null, not a partial import', () => {
    const closureOf = createClosureReader(db);
    expect(closureOf('/nix/store/00000000000000000000000000000000-absent.drv')).toBeNull();
  });
});
