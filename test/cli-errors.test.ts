import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import Database from 'better-sqlite3';
import { FIXTURE, fodder, tempDir } from './helpers/cli.js';

let dir: string, db: string;
const base = () => ['--nixpkgs', FIXTURE, '--db', db, '--store', join(dir, 'store'), '--system', 'x86_64-linux', '--variant', 'default'];

/** A digest of every row, to prove that failed commands changed nothing. */
function digest(file: string): string {
  const d = new Database(file, { readonly: true });
  const h = createHash('sha256');
  for (const t of ['crawls', 'crawl_targets', 'attrs', 'drvs', 'drv_inputs', 'fods', 'fod_seen']) {
    h.update(JSON.stringify(d.prepare(`SELECT * FROM ${t} ORDER BY 1, 2`).all()));
  }
  d.close();
  return h.digest('hex');
}

beforeAll(async () => {
  dir = tempDir();
  db = join(dir, 'fodder.db');
  const r = await fodder(['crawl', ...base()]);
  expect(r.code, r.stderr).toBe(0);
}, 120_000);

function config(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('bad input', () => {
  it('names the file and the unknown key of a config, exits non-zero and leaves the database as it was', async () => {
    const before = digest(db);
    const file = config('unknown.yaml', 'sytems: [x86_64-linux]\n');
    const r = await fodder(['crawl', '--config', file, ...base()]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`${file}: unknown key "sytems"`);
    expect(digest(db)).toBe(before);
  });

  it('says Nix is missing when nix-instantiate is not on PATH, and leaves the database as it was', async () => {
    const before = digest(db);
    const bin = join(dir, 'bin-without-nix');
    mkdirSync(bin, { recursive: true });
    symlinkSync(process.execPath, join(bin, 'node'));
    const r = await fodder(['crawl', ...base()], { env: { PATH: bin } });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('[NIX_MISSING]: nix-instantiate not found on PATH');
    expect(digest(db)).toBe(before);
  });

  it('names the key, the expected type and what it got', async () => {
    const file = config('type.yaml', 'limits:\n  memoryMb: lots\nexhaustive: 3\n');
    const r = await fodder(['crawl', '--config', file, ...base()]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`${file}: key "limits.memoryMb": expected number, got string`);
    expect(r.stderr).toContain(`key "exhaustive": expected boolean, got number`);
    const nested = config('nested.yaml', 'variants:\n  odd:\n    confg: {}\n');
    const n = await fodder(['crawl', '--config', nested, ...base()]);
    expect(n.stderr).toContain(`unknown key "confg" in variants.odd`);
  });

  it('names a schedule that is not a cron pattern, and takes one that is', async () => {
    const bad = config('cron.yaml', 'service:\n  schedule: "every night"\n');
    const r = await fodder(['crawl', '--config', bad, ...base()]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`${bad}: key "service.schedule": must be a cron pattern`);
    const good = config('cron-ok.yaml', 'service:\n  schedule: "30 2 * * 1"\n');
    const ok = await fodder(['attrs', '--config', good, '--db', join(dir, 'none.db')]);
    expect(ok.stderr).not.toContain('service.schedule');
  });

  it('rejects a file that is not YAML and a config file that does not exist', async () => {
    const file = config('broken.yaml', 'systems: [x86_64-linux\n');
    const r = await fodder(['crawl', '--config', file, ...base()]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`${file}: not valid YAML`);
    const missing = await fodder(['crawl', '--config', join(dir, 'nope.yaml'), ...base()]);
    expect(missing.code, missing.stderr).toBe(1);
    expect(missing.stderr).toContain(`config file not found: ${join(dir, 'nope.yaml')}`);
  });

  it('says where it looked for a missing nixpkgs', async () => {
    const before = digest(db);
    const r = await fodder(['crawl', '--nixpkgs', join(dir, 'no-nixpkgs'), '--db', db]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`nixpkgs not found at ${join(dir, 'no-nixpkgs')}`);
    expect(digest(db)).toBe(before);
  });

  it('refuses an unknown attribute, an unknown variant and a bad worker count', async () => {
    const before = digest(db);
    const attr = await fodder(['crawl', ...base(), '--attr', 'hello.noSuchThing']);
    expect(attr.code, attr.stderr).toBe(1);
    expect(attr.stderr).toContain('unknown attribute "hello.noSuchThing"');
    const variant = await fodder(['crawl', '--nixpkgs', FIXTURE, '--db', db, '--variant', 'bogus']);
    expect(variant.code, variant.stderr).not.toBe(0);
    expect(variant.stderr).toContain('unknown variant "bogus"');
    const workers = await fodder(['crawl', ...base(), '--workers', '0']);
    expect(workers.code, workers.stderr).toBe(2);
    expect(workers.stderr).toContain('--workers must be a positive integer');
    expect(digest(db)).toBe(before);
  });

  it("refuses --workers past the machine's cores, in the flag and in a config file, and leaves the database as it was", async () => {
    const before = digest(db);
    const limit = Math.max(2, availableParallelism());
    const flag = await fodder(['crawl', ...base(), '--workers', '1000']);
    expect(flag.code, flag.stderr).toBe(2);
    expect(flag.stderr).toContain(`fodder: error [USAGE]: --workers: must be at most ${limit} (this machine's cores) (got 1000)`);
    const file = config('workers.yaml', 'workers: 1000\nlimits:\n  scratchDrvs: 100000000\nfetch:\n  concurrency: 100000\n');
    const cfg = await fodder(['crawl', '--config', file, ...base()]);
    expect(cfg.code, cfg.stderr).toBe(1);
    expect(cfg.stderr).toContain(`${file}: key "workers": must be at most ${limit} (this machine's cores)`);
    expect(cfg.stderr).toContain(`${file}: key "limits.scratchDrvs": must be at most 1000000`);
    expect(cfg.stderr).toContain(`${file}: key "fetch.concurrency": must be at most 256`);
    const fetch = await fodder(['fetch', '--db', db, '--mirror', join(dir, 'm'), '--concurrency', '100000']);
    expect(fetch.code, fetch.stderr).toBe(2);
    expect(fetch.stderr).toContain('--concurrency: must be at most 256');
    const size = await fodder(['fetch', '--db', db, '--mirror', join(dir, 'm'), '--max-size', '1e12']);
    expect(size.code, size.stderr).toBe(2);
    expect(size.stderr).toContain('--max-size: must be at most 1048576 (1 TiB)');
    expect(digest(db)).toBe(before);
  });

  it("refuses a system the package set does not know, with Nix's message, and an empty --system, before any crawl is recorded", async () => {
    const before = digest(db);
    const bogus = await fodder(['crawl', ...base(), '--system', 'bogus-system']);
    expect(bogus.code, bogus.stderr + bogus.stdout).toBe(1);
    expect(bogus.stderr).toMatch(/^fodder: error \[SYSTEM_UNKNOWN\]: .*system "bogus-system".*Unknown system type ‘bogus-system’/);
    for (const empty of ['', 'x86_64-linux,']) {
      const r = await fodder(['crawl', '--nixpkgs', FIXTURE, '--db', db, '--system', empty]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`fodder: error [USAGE]: --system: an empty value ("${empty}")`);
    }
    const spaced = await fodder(['crawl', '--nixpkgs', FIXTURE, '--db', db, '--system', 'x86_64 linux']);
    expect(spaced.code, spaced.stderr).toBe(2);
    expect(spaced.stderr).toContain('--system: must be a Nix system name like x86_64-linux');
    const variant = await fodder(['crawl', '--nixpkgs', FIXTURE, '--db', db, '--variant', '']);
    expect(variant.code, variant.stderr).toBe(2);
    expect(digest(db)).toBe(before);
  });

  it("fails a crawl whose package set does not load (a syntax error, a top level that throws) with Nix's message, and refuses a plain file", async () => {
    for (const [body, said] of [
      ['{ system, config ? {}, overlays ? [] }: { a = ; }', /syntax error/],
      ['{ system, config ? {}, overlays ? [] }: throw "this package set refuses to load"', /this package set refuses to load/],
    ] as const) {
      const set = tempDir('fodder-broken-set-');
      writeFileSync(join(set, 'default.nix'), body);
      const file = join(tempDir(), 'broken.db');
      const r = await fodder(['crawl', '--nixpkgs', set, '--db', file, '--system', 'x86_64-linux', '--variant', 'default']);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/fodder: error \[(NIX_FAILED|SYSTEM_UNKNOWN)\]/);
      expect(r.stderr).toMatch(said);
      expect(r.stdout).not.toMatch(/attributes:/);
    }
    const plain = join(tempDir(), 'set.nix');
    writeFileSync(plain, '{ system, config ? {}, overlays ? [] }: { }');
    const r = await fodder(['crawl', '--nixpkgs', plain, '--db', join(tempDir(), 'p.db')]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`fodder: error [NIXPKGS_NOT_FOUND]: nixpkgs not found at ${plain}`);
  });

  it('says there is no database rather than answering from nothing', async () => {
    const r = await fodder(['sources', 'hello', '--db', join(dir, 'none.db')]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`no database at ${join(dir, 'none.db')}`);
    const garbage = join(dir, 'garbage.db');
    writeFileSync(garbage, 'this is not sqlite');
    const g = await fodder(['attrs', '--db', garbage]);
    expect(g.code, g.stderr).toBe(1);
    expect(g.stderr).toMatch(/cannot open database/);
    expect(readFileSync(garbage, 'utf8')).toBe('this is not sqlite');
  });

  it('crawls only below --attr and records it', async () => {
    const d2 = join(dir, 'attr.db');
    const r = await fodder([
      'crawl',
      '--nixpkgs',
      FIXTURE,
      '--db',
      d2,
      '--store',
      join(dir, 'store'),
      '--system',
      'x86_64-linux',
      '--variant',
      'default',
      '--attr',
      'hello',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).attrs).toMatchObject({ total: 1, drv: 1 });
  });
});
