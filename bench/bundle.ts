/**
 * `npm run bench:bundle`: `fodder bundle create` and `fodder bundle import` against tar on the
 * same files. A ground mirror of BENCH_BUNDLE_MB (default 2048) MiB of random tarballs of mixed
 * sizes (many of 4-64 KiB, some of 1-8 MiB, a few of 32-128 MiB), one FOD each, then:
 *
 *   create:  `fodder bundle create --crawl 1 --out DIR`    vs `tar -cf X.tar -C ground tarballs/sha256`
 *   create:  `fodder bundle create --crawl 1 --out X.tar`  (a tar stream) vs the same tar
 *   import:  `fodder bundle import DIR --mirror M`         vs `tar -xf X.tar -C M`, and `tar -xf … && sync`
 *
 * MB/s, the ratio fodder/tar (of throughput: >= 0.9 is the target), and fodder's peak RSS (the
 * largest resident set of its process, /usr/bin/time's %M), which must not grow with the size.
 * Each pair alternates, BENCH_ROUNDS (default 2) rounds, the best of each kept. The import
 * verifies every file (all four hashes, as a fetch does: md5 + sha1 on one thread, sha256 +
 * sha512 on another) and fsyncs it; tar does neither.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestCrawl } from '../test/helpers/fetch-db.js';
import { repoRoot } from '../test/helpers/servers.js';
import { timed, type Timed } from './timed.js';

const MB = Number(process.env.BENCH_BUNDLE_MB ?? 2048);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const cli = join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

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
    bytes += size;
  });
  crawl.close();
  const db = join(dir, 'fodder.db');
  const rate = (t: Timed) => bytes / 1e6 / (t.ms / 1000);
  const best = (ts: Timed[]) => ts.reduce((a, b) => (b.ms < a.ms ? b : a));
  const clean = (...ps: string[]) => ps.forEach((p) => rmSync(p, { recursive: true, force: true }));
  const runs: Record<string, Timed[]> = { createDir: [], createTar: [], tarC: [], import: [], tarX: [], tarXSync: [] };
  const bundleDir = join(dir, 'bundle');
  const bundleTar = join(dir, 'bundle.tar');
  const plainTar = join(dir, 'plain.tar');
  for (let r = 0; r < ROUNDS; r++) {
    clean(bundleDir, bundleTar, plainTar);
    const opts = { settleSec: 1 };
    runs.createDir.push(await timed('node', [cli, 'bundle', 'create', '--db', db, '--mirror', ground, '--crawl', '1', '--out', bundleDir], opts));
    runs.tarC.push(await timed('tar', ['-cf', plainTar, '-C', ground, 'tarballs/sha256'], opts));
    runs.createTar.push(await timed('node', [cli, 'bundle', 'create', '--db', db, '--mirror', ground, '--crawl', '1', '--out', bundleTar], opts));
    const m1 = join(dir, 'm-import');
    const m2 = join(dir, 'm-tar');
    clean(m1, m2);
    mkdirSync(m2);
    runs.import.push(await timed('node', [cli, 'bundle', 'import', bundleDir, '--mirror', m1], opts));
    runs.tarX.push(await timed('tar', ['-xf', plainTar, '-C', m2], opts));
    clean(m2);
    mkdirSync(m2);
    runs.tarXSync.push(await timed('bash', ['-c', `tar -xf ${plainTar} -C ${m2} && sync`], opts));
    if (!process.env.BENCH_KEEP) clean(m1, m2);
  }
  const line = (label: string, t: Timed, ref?: Timed) =>
    `  ${label.padEnd(52)} ${(t.ms / 1000).toFixed(2).padStart(6)} s  ${rate(t).toFixed(0).padStart(5)} MB/s` +
    (ref ? `  ratio ${(rate(t) / rate(ref)).toFixed(2)}  peak RSS ${(t.maxRssKb / 1024).toFixed(0)} MB` : '');
  const b = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, best(v)])) as Record<string, Timed>;
  process.stdout.write(
    [
      `bundle of ${list.length} files, ${(bytes / 2 ** 20).toFixed(0)} MiB (best of ${ROUNDS}; ratio = fodder's MB/s over tar's)`,
      line('tar -cf (the same files)', b.tarC),
      line('fodder bundle create --out DIR', b.createDir, b.tarC),
      line('fodder bundle create --out X.tar', b.createTar, b.tarC),
      line('tar -xf', b.tarX),
      line('tar -xf && sync', b.tarXSync),
      line('fodder bundle import DIR (verify 4 hashes, fsync) vs tar -xf', b.import, b.tarX),
      line('... vs tar -xf && sync', b.import, b.tarXSync),
    ].join('\n') + '\n',
  );
  if (process.env.BENCH_KEEP) process.stderr.write(`kept ${dir}\n`);
  else clean(dir);
}

await main();
