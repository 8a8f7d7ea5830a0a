/**
 * A database recorded by an older classifier is classed again when a newer fodder opens it for
 * writing: a crawl never rewrites a FOD it has recorded, so this is how fetchzip of older
 * nixpkgs and TeX Live's archives, once `url` downloads fodder could not reproduce, become
 * `archive` in an existing database. FODs without a .drv text keep what they have.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import Database from 'better-sqlite3';
import { openDb } from '../src/db/open.js';
import { CLASSIFIER_VERSION } from '../src/graph/fod.js';
import { crawlFixture } from './helpers/fixture-upstream.js';
import { fodder } from './helpers/cli.js';

const OLD_SHAPES = ['appledouble-1.1-source', 'oldflat-1.0-source', 'oldgh-v0.9-src', 'tl-alpha-1.0', 'tl-beta-2.1'];
let dbFile: string;
/** `meta.classifier` right after the crawl */
let recorded: unknown;
type Row = { name: string; kind: string; post_fetch: number; env_json: string };

const rowsOf = (file: string): Row[] => {
  const raw = new Database(file, { readonly: true });
  try {
    return raw
      .prepare(`SELECT name, kind, post_fetch, env_json FROM fods WHERE name IN (SELECT value FROM json_each(?)) ORDER BY name`)
      .all(JSON.stringify(OLD_SHAPES)) as Row[];
  } finally {
    raw.close();
  }
};

beforeAll(async () => {
  ({ dbFile } = await crawlFixture('x86_64-linux', { keepStore: false }));
  // what a fodder before this classifier recorded: these were recursive downloads with a postFetch it did not know
  const raw = new Database(dbFile);
  recorded = raw.prepare(`SELECT value FROM meta WHERE key = 'classifier'`).pluck().get();
  raw.prepare(`UPDATE fods SET kind = 'url', post_fetch = 1 WHERE name IN (SELECT value FROM json_each(?))`).run(JSON.stringify(OLD_SHAPES));
  raw.prepare(`DELETE FROM meta WHERE key = 'classifier'`).run();
  // and one FOD whose .drv text the database lacks (recorded before schema 3)
  raw.prepare(`DELETE FROM drv_texts WHERE drv_path IN (SELECT drv_path FROM fods WHERE name = 'tl-beta-2.1')`).run();
  raw.close();
}, 300_000);

describe('re-classing a database recorded by an older classifier', () => {
  test('a new crawl records the classifier it used', () => {
    expect(recorded).toBe(String(CLASSIFIER_VERSION));
  });

  test('a read-only open changes nothing; the first open for writing classes the FODs again', async () => {
    const before = await fodder(['fods', '--db', dbFile, '--kind', 'archive', '--json']);
    expect((JSON.parse(before.stdout) as unknown[]).length).toBe(4); // today's fetchzips only
    expect(rowsOf(dbFile).every((r) => r.kind === 'url')).toBe(true);

    openDb(dbFile).close();
    const after = rowsOf(dbFile);
    expect(after.map((r) => [r.name, r.kind, r.post_fetch])).toEqual([
      ['appledouble-1.1-source', 'archive', 0],
      ['oldflat-1.0-source', 'archive', 0],
      ['oldgh-v0.9-src', 'archive', 0],
      ['tl-alpha-1.0', 'archive', 0],
      ['tl-beta-2.1', 'url', 1], // no .drv text: kept as it was
    ]);
    for (const r of after) expect(JSON.parse(r.env_json), r.name).toHaveProperty('postFetch');
    const db = openDb(dbFile, { readonly: true });
    expect(db.prepare(`SELECT value FROM meta WHERE key = 'classifier'`).pluck().get()).toBe(String(CLASSIFIER_VERSION));
    db.close();
    const listed = await fodder(['fods', '--db', dbFile, '--kind', 'archive', '--json']);
    expect((JSON.parse(listed.stdout) as { name: string }[]).map((f) => f.name)).toEqual(expect.arrayContaining(OLD_SHAPES.slice(0, 4)));
  });
});
