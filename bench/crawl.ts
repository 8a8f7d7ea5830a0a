/**
 * Crawl benchmark: a nixpkgs-scale synthetic package set, crawled by `fodder crawl` with two
 * workers, against one plain `nix-instantiate` that instantiates the same derivations (into a
 * fresh chroot store; fodder into fresh drv stores, on the same disk). Runs alternate; medians
 * are compared. Also checks that
 * both produced the same drvPaths, and reports peak memory.
 *
 *   npm run bench:crawl [-- --sets 20 --per-set 1000 --rounds 3 --settle 65]
 */
import { execa } from 'execa';
import { rmSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import { writeSyntheticSet } from './synthetic-set.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const sets = arg('sets', 20), perSet = arg('per-set', 1000), rounds = arg('rounds', 3), settle = arg('settle', 65);
const root = resolve(import.meta.dirname, '..', '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const work = join(tmpdir(), 'fodder-bench-crawl');
rmSync(work, { recursive: true, force: true });
const set = join(work, 'set');
const shape = writeSyntheticSet(set, { sets, perSet });
console.log(`synthetic set: ${shape.attrs} package attributes in ${sets} nested sets, ${shape.fods} FODs`);
console.log(`each run starts after sync and ${settle} s of rest (see the comment on settled())`);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timed(cmd: string, args: string[], env: Record<string, string> = {}) {
  const t0 = process.hrtime.bigint();
  const r = await execa('/usr/bin/time', ['-f', '%M', cmd, ...args], { reject: false, env, all: false });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.exitCode !== 0) throw new Error(`${cmd} failed: ${String(r.stderr).slice(-2000)}`);
  const lines = String(r.stderr).trim().split('\n');
  return { ms, peakKb: Number(lines[lines.length - 1]), stdout: String(r.stdout), stderr: String(r.stderr) };
}

// Each run starts on a settled disk. ext4 without a journal (this machine's root volume) skips
// inodes deleted in the last 60 s (360 s while their inode table block is dirty) when it
// allocates new ones, scanning past every one of them: a run that starts right after another
// has deleted 50,000 files (a chroot store's lock files, a removed store) pays seconds of system
// time for the other's deletions. So stores are removed only at the end, and before each run
// the benchmark syncs and waits `--settle` seconds.
async function settled(): Promise<void> {
  await execa('sync');
  await new Promise((r) => setTimeout(r, settle * 1000));
}

const base: number[] = [], ours: number[] = [];
let basePaths = new Set<string>(), ourPaths = new Set<string>();
let coordKb = 0, nixKb = 0, baseKb = 0;
for (let round = 0; round < rounds; round++) {
  const s1 = join(work, `base-store-${round}`);
  await settled();
  const b = await timed('nix-instantiate', ['--store', s1, set, '--argstr', 'system', 'x86_64-linux']);
  base.push(b.ms);
  baseKb = Math.max(baseKb, b.peakKb);
  basePaths = new Set(b.stdout.split('\n').filter(Boolean));

  const s2 = join(work, `fodder-store-${round}`);
  const db = join(work, `fodder-${round}.db`);
  await settled();
  const f = await timed('node', [cli, 'crawl', '--nixpkgs', set, '--system', 'x86_64-linux', '--variant', 'default',
    '--store', s2, '--db', db, '--workers', '2', '--no-progress', '--json'], { FODDER_TIMINGS: '1', CI: '1' });
  ours.push(f.ms);
  coordKb = Math.max(coordKb, f.peakKb);
  const t = /timings: (\{.*\})/.exec(f.stderr);
  if (t) nixKb = Math.max(nixKb, (JSON.parse(t[1]) as { peakNixRssKb: number }).peakNixRssKb);
  const d = new Database(db, { readonly: true });
  ourPaths = new Set((d.prepare(`SELECT drv_path FROM attrs WHERE status = 'drv'`).all() as { drv_path: string }[]).map((r) => r.drv_path));
  d.close();
  console.log(`round ${round + 1}: nix-instantiate ${(b.ms / 1000).toFixed(2)} s, fodder crawl ${(f.ms / 1000).toFixed(2)} s, ratio ${(f.ms / b.ms).toFixed(3)}`);
}
const same = basePaths.size === ourPaths.size && [...basePaths].every((p) => ourPaths.has(p));
console.log(`same drvPaths: ${same} (${basePaths.size} from nix-instantiate, ${ourPaths.size} from fodder)`);
console.log(`median: nix-instantiate ${(median(base) / 1000).toFixed(2)} s, fodder crawl (2 workers) ${(median(ours) / 1000).toFixed(2)} s`);
console.log(`RATIO fodder/nix-instantiate: ${(median(ours) / median(base)).toFixed(3)} (target <= 0.65)`);
console.log(`peak RSS: fodder process (coordinator + worker threads) ${(coordKb / 1024).toFixed(0)} MiB, one nix-instantiate worker ${(nixKb / 1024).toFixed(0)} MiB, plain nix-instantiate ${(baseKb / 1024).toFixed(0)} MiB`);
void readFileSync;
rmSync(work, { recursive: true, force: true });
if (!same) process.exitCode = 1;
