/**
 * Acceptance run on a real nixpkgs: crawls that must all finish with the same records.
 *
 * 1. `--runs N` crawls in a row of the eight targets (x86_64-linux, i686-linux, x86_64-darwin,
 *    aarch64-linux × default, permissive), each into a fresh database: every one must exit 0,
 *    leave no crawl marked running, and record exactly the same attributes (every field but ids)
 *    and the same FODs per target as the first.
 * 2. `--kills K`: one more crawl, killed with SIGKILL (the whole process group: fodder, its
 *    helpers, every Nix) at K random moments spread over its progress (K random shares of the
 *    rows a whole crawl writes, each plus a random delay; one in its first seconds), each time
 *    started again on the same database; then a last run that must finish with the records of
 *    the uninterrupted crawls.
 *
 *   npm run accept:real -- --nixpkgs PATH [--runs 10] [--kills 10] [--workers 2] [--systems a,b] [--variants a,b]
 */
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import { crawlArgs, realTreeArgs } from './real-args.js';

const { opt, nixpkgs } = realTreeArgs('npm run accept:real -- --nixpkgs PATH [--runs 10] [--kills 10] [--workers 2]');
const runs = Number(opt('runs', '10'));
const kills = Number(opt('kills', '10'));
const workers = opt('workers', '2');
const systems = opt('systems', 'x86_64-linux,i686-linux,x86_64-darwin,aarch64-linux').split(',');
const variants = opt('variants', 'default,permissive').split(',');
const root = resolve(import.meta.dirname, '..', '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const work = join(process.env.FODDER_BENCH_DIR ?? tmpdir(), 'fodder-accept-real');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
const args = (db: string) => crawlArgs({ nixpkgs, db, workers, systems, variants });

/** A digest of what a crawl recorded: every attribute row (without ids) and the FODs each target saw. */
function digest(file: string) {
  const db = new Database(file, { readonly: true });
  // the latest crawl: a database crawled again holds each crawl's rows
  const crawl = db.prepare(`SELECT MAX(id) FROM crawls`).pluck().get() as number;
  const hash = (rows: unknown[]) => createHash('sha256').update(JSON.stringify(rows)).digest('hex').slice(0, 16);
  const attrs = db
    .prepare(
      `SELECT system, variant, path, parent, depth, status, drv_path, error_kind, error, reason,
    recurse, children_json, sig, alias_of FROM attrs WHERE crawl_id = ? ORDER BY system, variant, path`,
    )
    .all(crawl);
  const seen = db.prepare(`SELECT system, variant, drv_path FROM fod_seen WHERE crawl_id = ? ORDER BY system, variant, drv_path`).all(crawl);
  const running = (db.prepare(`SELECT COUNT(*) n FROM crawls WHERE status = 'running'`).get() as { n: number }).n;
  const counts = db
    .prepare(`SELECT system, variant, COUNT(*) n, SUM(status = 'error') errors FROM attrs WHERE crawl_id = ? GROUP BY system, variant ORDER BY system, variant`)
    .all(crawl);
  db.close();
  return { attrs: hash(attrs), fods: hash(seen), attrRows: attrs.length, fodRows: seen.length, running, counts };
}

const failures: string[] = [];
let reference: ReturnType<typeof digest> | null = null;
function compare(what: string, d: ReturnType<typeof digest>) {
  if (d.running > 0) failures.push(`${what}: ${d.running} crawl(s) left marked running`);
  if (!reference) {
    reference = d;
    return;
  }
  if (d.attrs !== reference.attrs || d.fods !== reference.fods) {
    failures.push(
      `${what}: records differ (attrs ${d.attrRows} rows ${d.attrs} vs ${reference.attrRows} ${reference.attrs}; fods ${d.fodRows} ${d.fods} vs ${reference.fodRows} ${reference.fods})`,
    );
  }
}

for (let i = 1; i <= runs; i++) {
  const db = join(work, `run-${i}.db`);
  const t0 = Date.now();
  const r = await execa('node', [cli, ...args(db)], { reject: false });
  const ms = Date.now() - t0;
  if (r.exitCode !== 0) {
    failures.push(`run ${i}: exit ${r.exitCode}: ${String(r.stderr).slice(-1500)}`);
    console.log(`run ${i}: FAILED (exit ${r.exitCode}) after ${(ms / 1000).toFixed(1)} s`);
    continue;
  }
  const d = digest(db);
  compare(`run ${i}`, d);
  console.log(
    `run ${i}: ${(ms / 1000).toFixed(1)} s, ${d.attrRows} attribute rows, ${d.fodRows} target FODs, attrs ${d.attrs}, fods ${d.fods}` +
      (i === 1 ? `\n  per target: ${JSON.stringify(d.counts)}` : ''),
  );
  rmSync(db, { force: true });
  rmSync(`${db}-wal`, { force: true });
  rmSync(`${db}-shm`, { force: true });
}

if (kills > 0) {
  const db = join(work, 'killed.db');
  // the attribute rows a whole crawl writes (the first run's), else a guess
  const total = (reference as ReturnType<typeof digest> | null)?.attrRows ?? 100_000;
  // K moments spread over one crawl's progress: a share of its rows (a moment before the first
  // commit when that share is under one row: the Nix checks, the pool starting), plus a random
  // delay of up to 10 s once the share is committed (commits come every 10 s), so that kills land
  // in every phase: mid-shard, mid-commit, between levels
  const shares = Array.from({ length: kills }, () => Math.random() * 0.97).sort((x, y) => x - y);
  shares[0] = Math.min(shares[0], 0.5 / total); // one kill in the first seconds
  const committed = (): number => {
    try {
      const d = new Database(db, { readonly: true, fileMustExist: true });
      try {
        return d.prepare(`SELECT COUNT(*) FROM attrs WHERE crawl_id = (SELECT MAX(id) FROM crawls)`).pluck().get() as number;
      } finally {
        d.close();
      }
    } catch {
      return 0; // no database yet, or locked for a moment
    }
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  let k = 0;
  for (const share of shares) {
    k++;
    const child = execa('node', [cli, ...args(db)], { reject: false, detached: true });
    let ended = false;
    void child.then(() => {
      ended = true;
    });
    const t0 = Date.now();
    const rows = Math.floor(share * total);
    while (!ended && rows >= 1 && committed() < rows) await sleep(200);
    await sleep(rows >= 1 ? Math.random() * 10_000 : 500 + Math.random() * 4500);
    if (!ended) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* ended already */
      }
    }
    const r = await child;
    if (r.exitCode === 0) {
      console.log(`kill ${k}: the crawl finished before its kill (at ${(share * 100).toFixed(1)} % of the rows); no more kills`);
      break;
    }
    console.log(
      `kill ${k}: SIGKILL after ${((Date.now() - t0) / 1000).toFixed(1)} s, with ${committed()} of ${total} rows committed (aimed at ${(share * 100).toFixed(1)} %)`,
    );
  }
  const t0 = Date.now();
  const r = await execa('node', [cli, ...args(db)], { reject: false });
  if (r.exitCode !== 0) failures.push(`resume after kills: exit ${r.exitCode}: ${String(r.stderr).slice(-1500)}`);
  else {
    const d = digest(db);
    compare('resumed after kills', d);
    console.log(`resumed after ${kills} kills: ${((Date.now() - t0) / 1000).toFixed(1)} s, attrs ${d.attrs}, fods ${d.fods}`);
  }
}
rmSync(work, { recursive: true, force: true });
console.log(
  failures.length ? `FAILED:\n${failures.join('\n')}` : `all ${runs} runs${kills ? ` and the resume after ${kills} kills` : ''} finished with the same records`,
);
if (failures.length) process.exitCode = 1;
