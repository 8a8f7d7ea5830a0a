import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import { FIXTURE, fodder, fodderSpawn, tempDir } from './helpers/cli.js';
import { openDb } from '../src/db/open.js';
import { SCHEMA_VERSION } from '../src/db/schema.js';

const TARGETS = ['--system', 'x86_64-linux', '--system', 'aarch64-linux'];

/** Everything a crawl records, without ids and timestamps, in a stable order. */
function snapshot(file: string, options = { texts: true }) {
  const db = new Database(file, { readonly: true });
  const q = (sql: string) => db.prepare(sql).all();
  const texts = options.texts ? { texts: q(`SELECT * FROM drv_texts ORDER BY drv_path`), sources: q(`SELECT * FROM store_sources ORDER BY path`) } : {};
  const snap = {
    crawls: q(`SELECT status FROM crawls`),
    targets: q(`SELECT system, variant, done FROM crawl_targets ORDER BY system, variant`),
    attrs: q(`SELECT system, variant, path, path_json, parent, depth, status, drv_path, error_kind, error, reason, recurse,
                     children_json, sig, alias_of FROM attrs ORDER BY system, variant, path`),
    drvs: q(`SELECT * FROM drvs ORDER BY drv_path`),
    inputs: q(`SELECT * FROM drv_inputs ORDER BY drv_path, input_drv`),
    fods: q(`SELECT * FROM fods ORDER BY drv_path`),
    seen: q(`SELECT system, variant, drv_path FROM fod_seen ORDER BY system, variant, drv_path`),
    ...texts,
  };
  db.close();
  return snap;
}

/** The statuses of the crawls recorded in `file`, oldest first. */
function crawlStatuses(file: string): string[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  const all = db.prepare(`SELECT status FROM crawls ORDER BY id`).pluck().all() as string[];
  db.close();
  return all;
}

function attrCount(file: string): number {
  try {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    const n = (db.prepare(`SELECT COUNT(*) n FROM attrs`).get() as { n: number }).n;
    db.close();
    return n;
  } catch {
    return 0;
  }
}

describe('an interrupted crawl', () => {
  it('resumes after kill -9 at several points and ends with exactly the database of an uninterrupted crawl', async () => {
    const dir = tempDir();
    const clean = join(dir, 'clean.db');
    const r = await fodder(['crawl', '--nixpkgs', FIXTURE, '--db', clean, '--store', join(dir, 'store-a'), '--workers', '2', ...TARGETS]);
    expect(r.code, r.stderr).toBe(0);
    const total = attrCount(clean);
    expect(total).toBeGreaterThan(200);

    const killed = join(dir, 'killed.db');
    const args = ['crawl', '--nixpkgs', FIXTURE, '--db', killed, '--store', join(dir, 'store-b'), '--workers', '2', ...TARGETS];
    const kills: number[] = [];
    const killedPids: number[] = [];
    // kill at start-up, then after a growing share of the rows is written; a crawl that writes
    // its last rows and finishes between two looks (a loaded machine) ends the kills: the next
    // `fodder crawl` would start a second crawl, not resume this one
    for (const share of [0, 0.1, 0.35, 0.6, 0.75]) {
      if (attrCount(killed) > 0 && crawlStatuses(killed).includes('done')) break;
      const child = fodderSpawn(args);
      const threshold = Math.floor(total * share);
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && child.exitCode === null && attrCount(killed) < threshold) {
        await new Promise((res) => setTimeout(res, 15));
      }
      child.kill('SIGKILL');
      await child;
      killedPids.push(child.pid!);
      kills.push(attrCount(killed));
    }
    // at least some kills landed mid-crawl (rows recorded, but not all)
    expect(kills.filter((n) => n > 0 && n < total).length).toBeGreaterThanOrEqual(2);
    // the crawl the kills interrupted is resumed, not begun again: one crawl, done
    const finishedByKilled = crawlStatuses(killed).includes('done');
    if (!finishedByKilled) {
      const last = await fodder([...args, '--json']);
      expect(last.code, last.stderr).toBe(0);
      expect(JSON.parse(last.stdout)).toMatchObject({ resumed: true });
    }
    expect(crawlStatuses(killed), `rows when killed: ${kills.join(', ')} of ${total}`).toEqual(['done']);
    expect(snapshot(killed)).toEqual(snapshot(clean));
    // the killed crawls' scratch directories are gone: the crawl that finished removed them (its
    // own, when it was killed after finishing, is left for the next crawl)
    const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
    const removed = finishedByKilled ? killedPids.slice(0, -1) : killedPids;
    const left = readdirSync(base).filter((n) => removed.some((pid) => n.startsWith(`fodder-crawl-${pid}-`)));
    expect(left).toEqual([]);
  }, 300_000);
});

describe('a database of schema 1 (derivation graph in a table of its own, no .drv texts)', () => {
  it('is upgraded in place by the next writer, with the same graph and the same answers', async () => {
    const dir = tempDir();
    const file = join(dir, 'fodder.db');
    const r = await fodder(['crawl', '--nixpkgs', FIXTURE, '--db', file, '--store', join(dir, 'store'), ...TARGETS]);
    expect(r.code, r.stderr).toBe(0);
    const sources = async () => {
      const s = await fodder(['sources', 'hello', '--system', 'aarch64-linux', '--db', file, '--json']);
      expect(s.code, s.stderr).toBe(0);
      return JSON.parse(s.stdout) as unknown;
    };
    const before = snapshot(file, { texts: false });
    const texts = snapshot(file).texts as unknown[];
    expect(texts.length).toBe(before.drvs.length);
    const answer = await sources();

    // turn it back into schema 1
    const db = new Database(file);
    db.exec(`
      DROP TABLE drv_texts;
      DROP TABLE store_sources;
      DROP VIEW drv_inputs;
      CREATE TABLE drv_inputs (drv_path TEXT NOT NULL, input_drv TEXT NOT NULL, PRIMARY KEY (drv_path, input_drv)) WITHOUT ROWID;
      INSERT INTO drv_inputs SELECT d.drv_path, j.value FROM drvs d, json_each(d.inputs_json) j;
      ALTER TABLE drvs DROP COLUMN inputs_json;
      UPDATE meta SET value = '1' WHERE key = 'schema';`);
    db.close();
    // readers answer from either layout
    expect(await sources()).toEqual(answer);

    openDb(file).close();
    const after = new Database(file, { readonly: true });
    expect(after.prepare(`SELECT value FROM meta WHERE key = 'schema'`).get()).toEqual({ value: String(SCHEMA_VERSION) });
    expect(after.prepare(`SELECT type FROM sqlite_master WHERE name = 'drv_inputs'`).get()).toEqual({ type: 'view' });
    // schema 4: the crawls table made again, with the process that runs a crawl
    expect(after.prepare(`SELECT COUNT(*) n FROM pragma_table_info('crawls') WHERE name IN ('pid', 'host', 'boot_id', 'pid_start')`).get()).toEqual({ n: 4 });
    expect(after.prepare(`SELECT sql FROM sqlite_master WHERE name = 'crawls'`).pluck().get()).toContain(`'interrupted', 'failed'`);
    after.close();
    expect(snapshot(file, { texts: false })).toEqual(before);
    expect(await sources()).toEqual(answer);

    // the derivations it recorded get their texts from the next crawl that reads them
    expect(snapshot(file).texts).toEqual([]);
    const again = await fodder(['crawl', '--nixpkgs', FIXTURE, '--db', file, '--store', join(dir, 'store'), ...TARGETS]);
    expect(again.code, again.stderr).toBe(0);
    expect(snapshot(file).texts).toEqual(texts);
  }, 120_000);
});
