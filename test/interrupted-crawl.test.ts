/**
 * A crawl stopped before its end: by SIGINT or SIGTERM (a clean stop: Nix processes ended,
 * scratch directory removed, crawl marked interrupted, 130 or 143), or by kill -9 (its process
 * is gone: shown as interrupted). Either way queries read the latest finished crawl, say which,
 * and read the unfinished one only when asked (`--crawl N`, labelled); the next crawl resumes it.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { procStat } from '../src/db/owner.js';
import { FIXTURE, fodder, fodderSpawn, tempDir, writePackageSet } from './helpers/cli.js';

const ONE = ['--system', 'x86_64-linux'];
// every system and variant of the test package set
const ALL = ['--system', 'x86_64-linux', '--system', 'aarch64-linux', '--system', 'x86_64-darwin', '--system', 'aarch64-darwin'];

function count(file: string, sql: string, ...params: unknown[]): number {
  try {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      return db
        .prepare(sql)
        .pluck()
        .get(...params) as number;
    } finally {
      db.close();
    }
  } catch {
    return 0; // not there yet, or locked for a moment
  }
}

async function until(what: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!what()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A process's children (and theirs), from /proc. */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    const stat = /^\d+$/.test(name) ? procStat(name) : null;
    if (stat) parent.set(Number(name), Number(stat[1]));
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of parent)
      if (pp === p) {
        out.push(c);
        walk(c);
      }
  };
  walk(pid);
  return out;
}

/** Whether a process runs (a zombie has ended: it only waits to be reaped). */
function running(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== null && stat[0] !== 'Z';
}

const scratchBase = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const scratchOf = (pid: number) => readdirSync(scratchBase).filter((n) => n.startsWith(`fodder-crawl-${pid}-`));

describe('a crawl stopped by SIGINT or SIGTERM', () => {
  it('ends its Nix processes, removes its scratch directory, is marked interrupted, exits 130 or 143, and is resumed to the rows of an uncut crawl', async () => {
    const dir = tempDir();
    const clean = join(dir, 'clean.db');
    const whole = await fodder(['crawl', '--nixpkgs', FIXTURE, '--db', clean, ...ONE, '--json', '--no-progress']);
    expect(whole.code, whole.stderr).toBe(0);
    const total = JSON.parse(whole.stdout).attrs.total as number;

    const db = join(dir, 'stopped.db');
    // no --store: the .drv files are written into the scratch directory
    const args = ['crawl', '--nixpkgs', FIXTURE, '--db', db, ...ONE, '--workers', '2', '--no-progress'];
    for (const [signal, status] of [
      ['SIGINT', 130],
      ['SIGTERM', 143],
    ] as const) {
      const child = fodderSpawn(args);
      const before = count(db, `SELECT COUNT(*) FROM attrs`);
      // mid-crawl: Nix at work (the spawner processes and their nix-instantiate), rows being written
      await until(() => descendants(child.pid!).length >= 3 && count(db, `SELECT COUNT(*) FROM attrs`) > before);
      expect(scratchOf(child.pid!)).toHaveLength(1);
      const kids = descendants(child.pid!);
      child.kill(signal);
      const r = await child;
      expect(r.exitCode, String(r.stderr)).toBe(status);
      expect(String(r.stderr)).toMatch(
        new RegExp(`^fodder: error \\[INTERRUPTED\\]: crawl 1 stopped by ${signal}, marked interrupted; run the same command to resume it$`),
      );
      await until(() => kids.every((k) => !running(k)), 2000);
      expect(scratchOf(child.pid!)).toEqual([]);
      expect(count(db, `SELECT COUNT(*) FROM crawls WHERE id = 1 AND status = 'interrupted'`)).toBe(1);
    }
    expect(count(db, `SELECT COUNT(*) FROM attrs`)).toBeLessThan(total);
    const resumed = await fodder([...args, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ crawl: 1, resumed: true, attrs: { total } });
    expect(count(db, `SELECT COUNT(*) FROM crawls WHERE id = 1 AND status = 'done'`)).toBe(1);
  }, 240_000);
});

describe('a crawl stopped while Nix checks the package set, before the walk', () => {
  it('ends that Nix at once (a package set that would take for ever to load), exits 143, records no crawl and leaves no scratch', async () => {
    // the package set reads a named pipe nobody writes: importing it blocks Nix until it is killed
    const set = writePackageSet('{ system, config ? {}, overlays ? [] }: builtins.seq (builtins.readFile ./fifo) { }');
    execFileSync('mkfifo', [join(set, 'fifo')]);
    const db = join(tempDir(), 'never.db');
    const child = fodderSpawn(['crawl', '--nixpkgs', set, '--db', db, ...ONE, '--variant', 'default', '--no-progress']);
    // the preflight's nix-instantiate is running (and blocked on the pipe)
    await until(() => descendants(child.pid!).some((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('nix-instantiate')));
    const kids = descendants(child.pid!);
    child.kill('SIGTERM');
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(143);
    expect(String(r.stderr)).toBe('fodder: error [INTERRUPTED]: stopped by SIGTERM; run the same command to resume it');
    await until(() => kids.every((k) => !running(k)), 2000);
    expect(scratchOf(child.pid!)).toEqual([]);
    expect(existsSync(db)).toBe(false);
  }, 60_000);
});

describe('queries after a crawl is killed', () => {
  it('read the latest finished crawl and say so; the unfinished one is read with --crawl N, labelled running, then interrupted, and is resumed', async () => {
    const dir = tempDir();
    const db = join(dir, 'fodder.db');
    const first = await fodder(['crawl', '--nixpkgs', FIXTURE, '--db', db, ...ONE, '--variant', 'default', '--no-progress']);
    expect(first.code, first.stderr).toBe(0);
    const q = (...args: string[]) => fodder([...args, '--db', db]);
    const finished = {
      attrs: (await q('attrs', '--json')).stdout,
      sources: (await q('sources', 'hello', '--json')).stdout,
      fods: (await q('fods', '--json')).stdout,
    };

    // a second crawl, of more targets and an attribute that takes seconds to evaluate (the whole
    // test package set takes about 3 s), started and killed half-way
    writeFileSync(
      join(dir, 'slow.nix'),
      `self: super: {
      zzzSlow = builtins.seq (builtins.foldl' (x: y: x + y) 0 (builtins.genList (i: i) 4000000)) super.hello; }`,
    );
    writeFileSync(join(dir, 'slow.yaml'), `overlays: [${JSON.stringify(join(dir, 'slow.nix'))}]\n`);
    const args = ['crawl', '--nixpkgs', FIXTURE, '--db', db, ...ALL, '--workers', '1', '--no-progress', '--config', join(dir, 'slow.yaml')];
    const child = fodderSpawn(args);
    await until(() => count(db, `SELECT COUNT(*) FROM attrs WHERE crawl_id = 2`) > 0);
    // while it runs: read only when asked, labelled; the same crawl is refused
    const live = await q('attrs', '--crawl', '2');
    expect(live.stdout.split('\n')[0]).toBe('attributes of crawl 2, RUNNING: what it recorded so far, partial');
    const twice = await fodder(args);
    expect(twice.code, twice.stderr).toBe(1);
    expect(twice.stderr).toMatch(new RegExp(`^fodder: error \\[CRAWL_RUNNING\\]: crawl 2 \\(the same crawl\\) is running in process ${child.pid}`));
    child.kill('SIGKILL');
    await child;
    const partial = count(db, `SELECT COUNT(*) FROM attrs WHERE crawl_id = 2`);
    expect(partial).toBeGreaterThan(0);
    // the database still says running: the process is gone, so it is interrupted
    expect(count(db, `SELECT COUNT(*) FROM crawls WHERE id = 2 AND status = 'running'`)).toBe(1);

    const attrs = await q('attrs', '--json');
    expect(attrs.code, attrs.stderr).toBe(0);
    expect(attrs.stdout).toBe(finished.attrs);
    expect(attrs.stderr).toBe('');
    expect((await q('attrs')).stdout.split('\n')[0]).toMatch(/^attributes of crawl 1, the latest finished \(/);
    expect((await q('sources', 'hello', '--json')).stdout).toBe(finished.sources);
    expect((await q('sources', 'hello')).stdout).toMatch(/^hello \(x86_64-linux, default; crawl 1, the latest finished that covered it\): \d+ sources\n/);
    expect((await q('fods', '--json')).stdout).toBe(finished.fods);
    const report = await q('report', '--format', 'json', '--no-save');
    expect(JSON.parse(report.stdout).crawl).toMatchObject({ id: 1, status: 'done' });

    const asked = await q('attrs', '--crawl', '2', '--json');
    expect(JSON.parse(asked.stdout)).toHaveLength(partial);
    expect(asked.stderr).toBe('fodder: warning: crawl 2 is interrupted: what it recorded so far is partial');
    expect((await q('attrs', '--crawl', '2')).stdout.split('\n')[0]).toBe('attributes of crawl 2, INTERRUPTED: what it recorded so far, partial');
    const askedReport = await q('report', '--format', 'json', '--no-save', '--crawl', '2');
    expect(JSON.parse(askedReport.stdout).crawl).toMatchObject({ id: 2, status: 'interrupted' });
    const unknown = await q('attrs', '--crawl', '7');
    expect(unknown.code, unknown.stderr).toBe(1);
    expect(unknown.stderr).toBe('fodder: error [CRAWL_UNKNOWN]: there is no crawl 7 (the latest is 2)');

    const resumed = await fodder([...args, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ crawl: 2, resumed: true });
    expect((await q('attrs')).stdout.split('\n')[0]).toMatch(/^attributes of crawl 2, the latest finished/);
  }, 240_000);

  it('a database whose only crawl is unfinished says so, and how to go on', async () => {
    const dir = tempDir();
    const db = join(dir, 'fodder.db');
    const child = fodderSpawn(['crawl', '--nixpkgs', FIXTURE, '--db', db, ...ONE, '--no-progress']);
    await until(() => count(db, `SELECT COUNT(*) FROM attrs WHERE path = 'hello'`) > 0);
    child.kill('SIGKILL');
    await child;
    for (const cmd of [['attrs'], ['fods'], ['report'], ['fetch', '--mirror', join(dir, 'mirror')]]) {
      const r = await fodder([...cmd, '--db', db]);
      expect(r.code, cmd.join(' ')).toBe(1);
      expect(r.stderr).toBe(
        'fodder: error [CRAWL_UNFINISHED]: the database holds no finished crawl: crawl 1 is interrupted; ' +
          'run the same `fodder crawl` again to finish it, or pass --crawl 1 to read what it has recorded so far',
      );
    }
    const sources = await fodder(['sources', 'hello', '--db', db]);
    expect(sources.code, sources.stderr).toBe(1);
    expect(sources.stderr).toMatch(
      /^fodder: error \[ATTR_NOT_CRAWLED\]: attribute "hello" was crawled only by crawl 1, which has not finished: pass --crawl 1 /,
    );
    const asked = await fodder(['sources', 'hello', '--db', db, '--crawl', '1']);
    expect(asked.code, asked.stderr).toBe(0);
    expect(asked.stdout).toMatch(/^hello \(x86_64-linux, (default|permissive); crawl 1, INTERRUPTED: what it recorded so far, partial\): \d+ sources/);
  }, 120_000);
});
