/**
 * A crawl's status as readers see it: `running` only while the process it records is alive
 * (the same pid, boot and start time), `interrupted` once it is gone, `failed` after an error;
 * the unfinished one of a key is what the next crawl resumes.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { abandonCrawls, createCrawlStore } from '../src/db/crawl-store.js';
import { chooseCrawl, crawlById, unfinishedCrawl } from '../src/db/crawls.js';
import { openDb } from '../src/db/open.js';
import { currentOwner } from '../src/db/owner.js';
import { tempDir } from './helpers/cli.js';

function newDb() {
  const db = openDb(join(tempDir(), 'fodder.db'), { create: true });
  const store = createCrawlStore(db);
  const crawl = (key: string) => store.createCrawl(key, '/nixpkgs', null, {}, {}, [{ system: 'x86_64-linux', variant: 'default', config: {} }]);
  return { db, store, crawl };
}

describe('crawl status', () => {
  it('is running while its process lives, interrupted when the process is gone or the pid is reused', () => {
    const { db, crawl } = newDb();
    const id = crawl('k');
    expect(crawlById(db, id)?.status).toBe('running');
    // a process that has ended
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    db.prepare(`UPDATE crawls SET pid = ? WHERE id = ?`).run(Number(gone.stdout), id);
    expect(crawlById(db, id)?.status).toBe('interrupted');
    // this pid, but not this process (another start time): a reused pid
    const me = currentOwner();
    db.prepare(`UPDATE crawls SET pid = ?, pid_start = ? WHERE id = ?`).run(me.pid, (me.start ?? 0) + 1, id);
    expect(crawlById(db, id)?.status).toBe('interrupted');
    // this process, recorded in another boot
    db.prepare(`UPDATE crawls SET pid_start = ?, boot_id = 'another-boot' WHERE id = ?`).run(me.start, id);
    expect(crawlById(db, id)?.status).toBe('interrupted');
    db.prepare(`UPDATE crawls SET boot_id = ? WHERE id = ?`).run(me.bootId, id);
    expect(crawlById(db, id)?.status).toBe('running');
    // written by a fodder before schema 4: no process recorded
    db.prepare(`UPDATE crawls SET pid = NULL, boot_id = NULL, pid_start = NULL WHERE id = ?`).run(id);
    expect(crawlById(db, id)?.status).toBe('interrupted');
    db.close();
  });

  it('is failed or interrupted when its process gives it up, and the next crawl of the key takes it over', () => {
    const { db, store, crawl } = newDb();
    const id = crawl('k');
    // rows in the open write transaction are dropped
    store.begin();
    db.prepare(
      `INSERT INTO attrs (crawl_id, system, variant, path, path_json, depth, status) VALUES (?, 'x86_64-linux', 'default', 'a', '["a"]', 1, 'drv')`,
    ).run(id);
    expect(abandonCrawls(db, 'failed')).toEqual([id]);
    expect(db.inTransaction).toBe(false);
    expect(db.prepare(`SELECT COUNT(*) FROM attrs`).pluck().get()).toBe(0);
    expect(crawlById(db, id)?.status).toBe('failed');
    expect(() => chooseCrawl(db)).toThrow(/CRAWL_UNFINISHED|no finished crawl: crawl 1 is failed/);
    expect(chooseCrawl(db, id).status).toBe('failed');
    expect(unfinishedCrawl(db, 'k')?.id).toBe(id);
    expect(store.resumeUnfinished('other-key')).toBeNull();
    expect(store.resumeUnfinished('k')).toBe(id);
    expect(crawlById(db, id)?.status).toBe('running');
    expect(abandonCrawls(db, 'interrupted')).toEqual([id]);
    expect(crawlById(db, id)?.status).toBe('interrupted');
    store.finishCrawl(id, 1);
    expect(chooseCrawl(db)).toMatchObject({ id, status: 'done' });
    expect(unfinishedCrawl(db, 'k')).toBeNull();
    db.close();
  });

  it('a crawl a live process runs is not taken over', () => {
    const { db, store, crawl } = newDb();
    const id = crawl('k');
    expect(() => store.resumeUnfinished('k')).toThrow(new RegExp(`crawl ${id} \\(the same crawl\\) is running in process ${process.pid}`));
    db.close();
  });

  it('an older database keeps its crawls through the upgrade to schema 4, and a reader that does not upgrade sees them', () => {
    const { db, crawl } = newDb();
    const file = db.name;
    const id = crawl('k');
    db.prepare(`UPDATE crawls SET status = 'done' WHERE id = ?`).run(id);
    crawl('k2');
    db.close();
    // back to schema 3's crawls table: no process columns, two statuses
    const raw = new Database(file);
    raw.pragma('foreign_keys = OFF');
    raw.exec(`
      CREATE TABLE crawls_v3 (id INTEGER PRIMARY KEY, key TEXT NOT NULL, nixpkgs TEXT NOT NULL, params_json TEXT NOT NULL,
        mirrors_json TEXT NOT NULL DEFAULT '{}', status TEXT NOT NULL CHECK (status IN ('running', 'done')),
        started_at TEXT NOT NULL, finished_at TEXT, duration_ms INTEGER);
      INSERT INTO crawls_v3 SELECT id, key, nixpkgs, params_json, mirrors_json, status, started_at, finished_at, duration_ms FROM crawls;
      DROP TABLE crawls; ALTER TABLE crawls_v3 RENAME TO crawls;
      UPDATE meta SET value = '3' WHERE key = 'schema';`);
    raw.close();
    const reader = openDb(file, { readonly: true });
    expect(chooseCrawl(reader)).toMatchObject({ id, status: 'done' });
    expect(crawlById(reader, id + 1)?.status).toBe('interrupted');
    reader.close();
    const writer = openDb(file);
    expect(writer.prepare(`SELECT id, key, status, pid FROM crawls ORDER BY id`).all()).toEqual([
      { id, key: 'k', status: 'done', pid: null },
      { id: id + 1, key: 'k2', status: 'running', pid: null },
    ]);
    expect(abandonCrawls(writer, 'failed')).toEqual([]); // not this process's
    writer.prepare(`UPDATE crawls SET status = 'failed' WHERE id = ?`).run(id + 1);
    expect(crawlById(writer, id + 1)?.status).toBe('failed');
    writer.close();
  });
});
