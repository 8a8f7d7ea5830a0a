/**
 * `npm run bench:flat-nar`: a flat source's NAR made on the fly by `fodder serve` against the
 * same file served raw from `/tarballs/`, on loopback.
 *
 *   1. the publish-time cost: `addFlat` of a 1 GiB file just admitted to the hashed mirror (its
 *      sha256 and NAR sha256 in one read, on a hash pool thread), against `sha256sum` of it;
 *   2. throughput: `curl -o /dev/null` of `/nar/flat/<nix32>.nar` and of `/tarballs/sha256/<hex>`
 *      from the built CLI's `fodder serve`, ROUNDS times each, alternating; the ratio of the
 *      medians (on the fly / raw).
 *
 * BENCH_BIG_MB shrinks the file, BENCH_ROUNDS sets the rounds (default 2).
 */
import { execa, execaSync } from 'execa';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBinaryCache } from '../src/mirror/binary-cache.js';
import { flatNarUrl } from '../src/mirror/flat-nar.js';
import { createHashedMirror } from '../src/mirror/hashed-mirror.js';
import { createHashPool, hashFile } from '../src/mirror/hashing.js';
import { flatFod } from '../test/helpers/fetch-db.js';
import { repoRoot } from '../test/helpers/servers.js';
import { startServe } from '../test/helpers/service.js';
import { median } from './timed.js';

const BIG = Number(process.env.BENCH_BIG_MB ?? 1024) * 2 ** 20;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const root = repoRoot();

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fodder-bench-flatnar-'));
  try {
    const mirrorDir = join(dir, 'mirror');
    const mirror = createHashedMirror(mirrorDir);
    const incoming = join(mirrorDir, 'tmp', 'big');
    const fd = openSync(incoming, 'w');
    const block = randomBytes(8 << 20);
    for (let done = 0; done < BIG; done += block.length) writeSync(fd, block, 0, Math.min(block.length, BIG - done));
    closeSync(fd);
    const pool = createHashPool();
    const digests = await hashFile(pool, incoming, BIG);
    await mirror.admitFile(incoming, digests);
    const stored = join(mirrorDir, 'tarballs', 'sha256', digests.sha256);

    const fod = flatFod('big.tar.gz', digests.sha256);
    const cache = createBinaryCache({ mirrorDir, compression: 'none', secretKey: null, priority: 30, flat: false, hashPool: pool });
    let t0 = performance.now();
    const entry = await cache.addFlat(fod, digests);
    const publishMs = performance.now() - t0;
    await pool.close();
    t0 = performance.now();
    const sum = execaSync('sha256sum', [stored]).stdout.split(' ')[0];
    const sha256sumMs = performance.now() - t0;
    if (sum !== digests.sha256) throw new Error('sha256sum disagrees');
    console.log(`${BIG / 2 ** 20} MiB flat source (the file just written, in the page cache)`);
    console.log(`  addFlat (sha256 + NAR sha256, one read, a pool thread)  ${(publishMs / 1000).toFixed(2)} s`);
    console.log(`  sha256sum of the same file                             ${(sha256sumMs / 1000).toFixed(2)} s`);

    writeFileSync(join(dir, 'token'), 'bench-flat-nar-token-0123456789\n');
    const config = join(dir, 'fodder.yaml');
    writeFileSync(
      config,
      `nixpkgs: ${join(root, 'test', 'fixtures', 'nixpkgs')}\ndb: fodder.db\nfetch:\n  mirror: mirror\nservice:\n  listen: 127.0.0.1:0\n  tokenFile: token\n`,
    );
    const service = await startServe(config, '--no-schedule');
    try {
      const urls = { 'on the fly': `${service.url}/${entry.url}`, raw: `${service.url}/tarballs/sha256/${digests.sha256}` };
      if (entry.url !== flatNarUrl(digests.sha256)) throw new Error(`unexpected URL ${entry.url}`);
      const seconds: Record<keyof typeof urls, number[]> = { 'on the fly': [], raw: [] };
      for (let r = 0; r < ROUNDS; r++) {
        for (const which of Object.keys(urls) as (keyof typeof urls)[]) {
          const out = await execa('curl', ['-s', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', urls[which]]);
          const [size, time] = out.stdout.split(' ').map(Number);
          if (size !== (which === 'raw' ? BIG : entry.narSize)) throw new Error(`${which}: ${size} bytes`);
          seconds[which].push(time);
          console.log(`  round ${r + 1} ${which.padEnd(10)} ${time.toFixed(2)} s  ${(size / 2 ** 20 / time).toFixed(0)} MiB/s`);
        }
      }
      const fly = median(seconds['on the fly']);
      const raw = median(seconds.raw);
      console.log(
        `median: on the fly ${(BIG / 2 ** 20 / fly).toFixed(0)} MiB/s, raw ${(BIG / 2 ** 20 / raw).toFixed(0)} MiB/s; throughput ratio ${(raw / fly).toFixed(2)}`,
      );
    } finally {
      service.proc.kill('SIGTERM');
      await service.proc;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
