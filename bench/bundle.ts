/**
 * `npm run bench:bundle`: `fodder bundle create` and `fodder bundle import` against tar doing the
 * same work on the same files. A ground mirror of BENCH_BUNDLE_MB (default 2048) MiB of random
 * tarballs of mixed sizes (many of 4-64 KiB, some of 1-8 MiB, a few of 32-128 MiB), one FOD each,
 * with its narinfo in `cache/flat/` as `fodder fetch` publishes it;
 * then BENCH_ROUNDS (default 3) rounds of these pairs, fodder first in odd rounds and tar first in
 * even ones:
 *
 *   create --out DIR     `fodder bundle create --crawl 1 --out DIR`    vs tar making the same directory of the same
 *                        files (`tar -cf - … | tar -xf - -C DIR`); and, printed beside, `tar -cf X.tar` (one file
 *                        written) and `cp -r` (copy_file_range: no user-space copy)
 *   create --out X.tar   `fodder bundle create --crawl 1 --out X.tar`  vs the same `tar -cf`
 *   import DIR           `fodder bundle import DIR --mirror M`         vs `tar -xf X.tar -C M && sync`, and `tar -xf` alone;
 *                        and vs the floor of a verifying import (bench/verify-floor.ts: the copy on two threads
 *                        with both hashes the import takes, then one sync; and with one hash)
 *   import X.tar         `fodder bundle import X.tar --mirror M`       vs the same
 *   import DIR, key trusted   the same with `--trusted-key` of the key the ground signed its narinfos
 *                        with (docs/offgrid.md's set-up): every narinfo's signature checked too; vs the same
 *
 * The import verifies every object against its name and fsyncs it before its rename, so
 * `tar -xf && sync` is the same work but for the verifying (`tar -xf` alone leaves the bytes in
 * the page cache). Before each command: `sync`, the page cache dropped (as root:
 * /proc/sys/vm/drop_caches), its inputs read back, and memory touched (`warm`, below), so every
 * command starts with the same files cached and its page cache backed by the host (without the
 * drop, the same `cp -r` took 0.37 s or 3.2 s by what earlier commands had left in memory).
 * Nothing is deleted within a round; between rounds the outputs are, then the
 * bench waits BENCH_SETTLE_SEC (default 65) seconds: ext4 without a journal scans past inodes
 * deleted in the last 60 s when it creates files (bench/timed.ts), which would slow whichever
 * side came next. A round needs about eleven times BENCH_BUNDLE_MB of disk.
 *
 * Printed: each round's times, MB/s, the ratio fodder/tar (of throughput; >= 0.9 is the target),
 * fodder's peak RSS (/usr/bin/time's %M, which must not grow with the size) and the load average
 * (the machine may be shared); then the median ratio of each pair.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { createBinaryCache } from '../src/mirror/binary-cache.js';
import { generateKeyPair } from '../src/nix-formats/narinfo.js';
import { createHashPool } from '../src/mirror/hashing.js';
import { createTestCrawl, flatFod } from '../test/helpers/fetch-db.js';
import { repoRoot } from '../test/helpers/servers.js';
import { median, timed, type Timed } from './timed.js';

const MB = Number(process.env.BENCH_BUNDLE_MB ?? 2048);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SETTLE_SEC = Number(process.env.BENCH_SETTLE_SEC ?? 65);
/** BENCH_CLI: another build's dist/src/cli/main.js (a before/after comparison) */
const cli = process.env.BENCH_CLI ?? join(repoRoot(), 'dist', 'src', 'cli', 'main.js');
/** Sizes summing to about `total`: by bytes, ~10% small, ~40% medium, ~50% large files. */
function sizes(total: number): number[] {
  const out: number[] = [];
  const pick = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo));
  const fill = (share: number, lo: number, hi: number) => {
    for (let left = total * share; left > 0;) {
      const s = pick(lo, hi);
      out.push(s);
      left -= s;
    }
  };
  fill(0.1, 4 << 10, 64 << 10);
  fill(0.4, 1 << 20, 8 << 20);
  fill(0.5, 32 << 20, 128 << 20);
  return out;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fodder-bench-bundle-'));
  const ground = join(dir, 'ground');
  const tarballs = join(ground, 'tarballs', 'sha256');
  mkdirSync(tarballs, { recursive: true });
  const crawl = createTestCrawl(join(dir, 'fodder.db'));
  let bytes = 0;
  const list = sizes(MB * 2 ** 20);
  process.stderr.write(`generating ${list.length} files, ${MB} MiB, in ${dir}\n`);
  const made: [string, string][] = [];
  list.forEach((size, i) => {
    const h = createHash('sha256');
    const tmp = join(tarballs, 'tmp');
    const fd = openSync(tmp, 'w');
    for (let left = size; left > 0; left -= 1 << 22) {
      const c = randomBytes(Math.min(left, 1 << 22));
      h.update(c);
      writeSync(fd, c);
    }
    closeSync(fd);
    const hex = h.digest('hex');
    renameSync(tmp, join(tarballs, hex));
    crawl.addFod({ name: `f${i}.tar.gz`, urls: [`http://127.0.0.1/f${i}`], hex });
    made.push([`f${i}.tar.gz`, hex]);
    bytes += size;
  });
  crawl.close();
  // each file's narinfo in cache/flat/, as `fodder fetch` publishes them: a bundle carries them,
  // and the import checks each against the NAR of its tarball
  const pool = createHashPool();
  // signed, as a ground's cache is (docs/offgrid.md); the public key is trusted by one import pair
  const key = generateKeyPair('bench-ground-1');
  const keyFile = join(dir, 'ground.public');
  writeFileSync(keyFile, key.publicKey);
  const cache = createBinaryCache({ mirrorDir: ground, compression: 'none', secretKey: key.secretKey, priority: 30, flat: false, hashPool: pool });
  for (const [name, hex] of made) await cache.addFlat(flatFod(name, hex), { sha256: hex });
  await pool.close();
  for (const name of readdirSync(join(ground, 'cache', 'flat'))) bytes += statSync(join(ground, 'cache', 'flat', name)).size;
  const db = join(dir, 'fodder.db');
  const rate = (t: Timed) => bytes / 1e6 / (t.ms / 1000);
  const mbs = (t: Timed) => `${(t.ms / 1000).toFixed(2).padStart(6)} s ${rate(t).toFixed(0).padStart(5)} MB/s`;
  const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  /** drops the page cache (when this process may) and reads the files once, so both sides of a pair start with them, and only them, cached */
  const canDrop = (() => {
    try {
      accessSync('/proc/sys/vm/drop_caches', constants.W_OK);
      return true;
    } catch {
      return false;
    }
  })();
  if (!canDrop) process.stderr.write('note: /proc/sys/vm/drop_caches is not writable (not root): the page cache is not reset between commands\n');
  // This VM hands memory the guest frees back to its host (free page reporting, 2 MiB at a time,
  // about two seconds after it is freed), and touching such a page again costs the kernel a trip
  // to the host: 3 GiB touched after a cache drop took 6.6 s of system time. Without a remedy, the
  // same `tar -cf` of 1.1 GiB took 0.58, 1.35 or 2.47 s by how much of the memory it wrote into
  // had been handed back, and a pair's ratio said more about that than about either side. So,
  // after the cache is dropped and the inputs read back, a process touches TOUCH bytes and exits,
  // and the command starts at once, its page cache taken from memory the host still backs.
  const TOUCH = Math.max(3 * 2 ** 30, 2 * MB * 2 ** 20);
  const touch = `const b = Buffer.alloc(${TOUCH}); for (let i = 0; i < b.length; i += 4096) b[i] = 1;`;
  const warm = async (...paths: string[]) => {
    if (canDrop) await execa('bash', ['-c', 'sync && echo 3 > /proc/sys/vm/drop_caches']);
    await execa('bash', ['-c', 'find "$@" -type f -exec cat {} + > /dev/null', 'warm', ...paths]);
    await execa('sync');
    await execa('node', ['-e', touch]);
  };
  const run = async (cmd: string, args: string[], inputs: string[]) => {
    await warm(...inputs);
    return timed(cmd, args);
  };
  const fodder = (...args: string[]): [string, string[]] => ['node', [cli, ...args]];
  const ratios: Record<string, number[]> = {};
  const out: string[] = [
    `bundle of ${list.length} files, ${(bytes / 2 ** 20).toFixed(0)} MiB, ${ROUNDS} rounds; ratio = fodder's MB/s over tar's; page cache ${canDrop ? 'dropped' : 'NOT dropped'} before each command`,
  ];
  const say = (line: string) => {
    out.push(line);
    process.stderr.write(line + '\n');
  };
  for (let r = 0; r < ROUNDS; r++) {
    const w = (name: string) => join(dir, `r${r}-${name}`);
    say(`round ${r + 1} (load average ${load()}; ${r % 2 ? 'tar' : 'fodder'} first)`);
    /** one pair, in this round's order; the ratios against each reference */
    const pair = async (label: string, f: () => Promise<Timed>, refs: [string, () => Promise<Timed>][]) => {
      let mine: Timed | null = null;
      const theirs: Timed[] = [];
      if (r % 2 === 0) mine = await f();
      for (const [, ref] of refs) theirs.push(await ref());
      if (r % 2 === 1) mine = await f();
      say(`  ${label.padEnd(30)} ${mbs(mine!)}  peak RSS ${(mine!.maxRssKb / 1024).toFixed(0)} MB`);
      refs.forEach(([name], i) => {
        const ratio = rate(mine!) / rate(theirs[i]);
        (ratios[`${label} vs ${name}`] ??= []).push(ratio);
        say(`    vs ${name.padEnd(25)} ${mbs(theirs[i])}  ratio ${ratio.toFixed(2)}`);
      });
    };
    // each pair's tar writes a new file, as fodder does: tar over the archive the pair before wrote
    // truncates 1 GiB first (1.7 s against 0.6 s here)
    let tars = 0;
    const tarC = () => run('tar', ['-cf', w(tars++ ? `plain-${tars}.tar` : 'plain.tar'), '-C', ground, 'tarballs/sha256', 'cache/flat'], [ground]);
    const create = (o: string) => run(...fodder('bundle', 'create', '--db', db, '--mirror', ground, '--crawl', '1', '--out', o), [ground]);
    await pair('create --out DIR', () => create(w('bundle')), [
      [
        'tar -cf - | tar -xf -',
        () => run('bash', ['-c', 'mkdir "$0" && tar -cf - -C "$1" tarballs/sha256 cache/flat | tar -xf - -C "$0"', w('tar-copy'), ground], [ground]),
      ],
      ['tar -cf', tarC],
      ['cp -r', () => run('bash', ['-c', 'mkdir "$0" && cp -r "$1/tarballs" "$1/cache" "$0"/', w('copy'), ground], [ground])],
    ]);
    await pair('create --out X.tar', () => create(w('bundle.tar')), [['tar -cf', tarC]]);
    let n = 0;
    const tarX = (sync: boolean) => {
      const m = w(`tar-x${n++}`);
      mkdirSync(m);
      return run('bash', ['-c', `tar -xf "$0" -C "$1"${sync ? ' && sync' : ''}`, w('plain.tar'), m], [w('plain.tar')]);
    };
    /** the verifying import's floor (bench/verify-floor.ts): the copy and its two hashes, and the copy and one */
    const floors = (input: string): [string, () => Promise<Timed>][] =>
      ([2, 1] as const).map((h) => [
        `floor, ${h} hash${h > 1 ? 'es' : ''}`,
        () => {
          const d = w(`floor-${n++}`);
          return run('node', [join(repoRoot(), 'dist', 'bench', 'verify-floor.js'), input, d, String(h)], [input]);
        },
      ]);
    for (const [label, input, trust] of [
      ['import DIR', w('bundle'), []],
      ['import X.tar', w('bundle.tar'), []],
      ['import DIR, key trusted', w('bundle'), ['--trusted-key', keyFile]],
    ] as const) {
      await pair(label, () => run(...fodder('bundle', 'import', input, '--mirror', w(`import-${n++}`), ...trust), [input]), [
        ['tar -xf && sync', () => tarX(true)],
        ['tar -xf', () => tarX(false)],
        ...(label === 'import DIR' ? floors(input) : []),
      ]);
    }
    if (r + 1 < ROUNDS) {
      for (const name of readdirSync(dir)) if (name.startsWith(`r${r}-`)) rmSync(join(dir, name), { recursive: true, force: true });
      await execa('sync');
      await new Promise((res) => setTimeout(res, SETTLE_SEC * 1000));
    }
  }
  say('median ratios:');
  for (const [k, v] of Object.entries(ratios)) say(`  ${k.padEnd(45)} ${median(v).toFixed(2)}  (${v.map((x) => x.toFixed(2)).join(', ')})`);
  process.stdout.write(out.join('\n') + '\n');
  if (process.env.BENCH_KEEP) process.stderr.write(`kept ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });
}

await main();
