import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
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
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}: unknown key "sytems"`);
    expect(digest(db)).toBe(before);
  });

  it('says Nix is missing when nix-instantiate is not on PATH, and leaves the database as it was', async () => {
    const before = digest(db);
    const bin = join(dir, 'bin-without-nix');
    mkdirSync(bin, { recursive: true });
    symlinkSync(process.execPath, join(bin, 'node'));
    const r = await fodder(['crawl', ...base()], { env: { PATH: bin } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('[NIX_MISSING]: nix-instantiate not found on PATH');
    expect(digest(db)).toBe(before);
  });

  it('names the key, the expected type and what it got', async () => {
    const file = config('type.yaml', 'limits:\n  memoryMb: lots\nexhaustive: 3\n');
    const r = await fodder(['crawl', '--config', file, ...base()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}: key "limits.memoryMb": expected number, got string`);
    expect(r.stderr).toContain(`key "exhaustive": expected boolean, got number`);
    const nested = config('nested.yaml', 'variants:\n  odd:\n    confg: {}\n');
    const n = await fodder(['crawl', '--config', nested, ...base()]);
    expect(n.stderr).toContain(`unknown key "confg" in variants.odd`);
  });

  it('rejects a file that is not YAML and a config file that does not exist', async () => {
    const file = config('broken.yaml', 'systems: [x86_64-linux\n');
    const r = await fodder(['crawl', '--config', file, ...base()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}: not valid YAML`);
    const missing = await fodder(['crawl', '--config', join(dir, 'nope.yaml'), ...base()]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`config file not found: ${join(dir, 'nope.yaml')}`);
  });

  it('says where it looked for a missing nixpkgs', async () => {
    const before = digest(db);
    const r = await fodder(['crawl', '--nixpkgs', join(dir, 'no-nixpkgs'), '--db', db]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`nixpkgs not found at ${join(dir, 'no-nixpkgs')}`);
    expect(digest(db)).toBe(before);
  });

  it('refuses an unknown attribute, an unknown variant and a bad worker count', async () => {
    const before = digest(db);
    const attr = await fodder(['crawl', ...base(), '--attr', 'hello.noSuchThing']);
    expect(attr.code).toBe(1);
    expect(attr.stderr).toContain('unknown attribute "hello.noSuchThing"');
    const variant = await fodder(['crawl', '--nixpkgs', FIXTURE, '--db', db, '--variant', 'bogus']);
    expect(variant.code).not.toBe(0);
    expect(variant.stderr).toContain('unknown variant "bogus"');
    const workers = await fodder(['crawl', ...base(), '--workers', '0']);
    expect(workers.code).toBe(2);
    expect(workers.stderr).toContain('--workers must be a positive integer');
    expect(digest(db)).toBe(before);
  });

  it('says there is no database rather than answering from nothing', async () => {
    const r = await fodder(['sources', 'hello', '--db', join(dir, 'none.db')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no database at ${join(dir, 'none.db')}`);
    const garbage = join(dir, 'garbage.db');
    writeFileSync(garbage, 'this is not sqlite');
    const g = await fodder(['attrs', '--db', garbage]);
    expect(g.code).toBe(1);
    expect(g.stderr).toMatch(/cannot open database/);
    expect(readFileSync(garbage, 'utf8')).toBe('this is not sqlite');
  });

  it('crawls only below --attr and records it', async () => {
    const d2 = join(dir, 'attr.db');
    const r = await fodder(['crawl', '--nixpkgs', FIXTURE, '--db', d2, '--store', join(dir, 'store'), '--system', 'x86_64-linux', '--variant', 'default', '--attr', 'hello', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).attrs).toMatchObject({ total: 1, drv: 1 });
  });
});
