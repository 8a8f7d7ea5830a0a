/**
 * NAR hash throughput: fodder's streaming `narHash` against `nix-hash --type sha256` on one
 * large file (1 GiB by default, random bytes so nothing is sparse).
 *
 *   npx vite-node bench/nar-hash.ts [sizeMiB] [runs]
 *
 * Each side runs `runs` times (default 5), alternating, after one warm-up, so both read from
 * the page cache; the best time counts.
 */
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, openSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execaSync } from 'execa';
import { narHash } from '../src/nix-formats/nar.js';

const sizeMiB = Number(process.argv[2] ?? 1024);
const runs = Number(process.argv[3] ?? 5);

const dir = mkdtempSync(join(tmpdir(), 'fodder-bench-'));
const file = join(dir, 'big.bin');
try {
  const fd = openSync(file, 'w');
  const block = Buffer.allocUnsafe(1 << 20);
  for (let i = 0; i < sizeMiB; i++) writeSync(fd, randomFillSync(block));
  closeSync(fd);

  const nixHex = (): string => execaSync('nix-hash', ['--type', 'sha256', file]).stdout.trim();
  const timed = async (f: () => unknown): Promise<number> => {
    const t0 = performance.now();
    await f();
    return (performance.now() - t0) / 1000;
  };

  const ours = await narHash(file); // also warms the page cache
  const theirs = nixHex();
  if (ours.hex !== theirs) throw new Error(`hash mismatch: fodder ${ours.hex}, nix-hash ${theirs}`);

  // Alternate the two so load from anything else on the machine hits both alike.
  let tOurs = Infinity;
  let tNix = Infinity;
  for (let i = 0; i < runs; i++) {
    tOurs = Math.min(tOurs, await timed(() => narHash(file)));
    tNix = Math.min(tNix, await timed(nixHex));
  }
  const mb = sizeMiB * 1.048576;
  console.log(`file: ${sizeMiB} MiB, best of ${runs}`);
  console.log(`fodder narHash:  ${tOurs.toFixed(3)} s  ${(mb / tOurs).toFixed(0)} MB/s`);
  console.log(`nix-hash sha256: ${tNix.toFixed(3)} s  ${(mb / tNix).toFixed(0)} MB/s`);
  console.log(`ratio (fodder time / nix-hash time): ${(tOurs / tNix).toFixed(2)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
