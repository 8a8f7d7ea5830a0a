/**
 * `bench:bundle`'s floor for an import: the least a verifying import of a bundle directory must
 * do, with none of fodder's bookkeeping. Every file under `<bundle>/tarballs` and
 * `<bundle>/cache` is copied to `<dest>` on two threads (the files shared out by size), each
 * 64 KiB block written and hashed from the same buffer with sha256 and, when HASHES is 2 (the
 * default), the sha256 of the file's NAR too (a flat narinfo's NarHash, which the import
 * checks); then one `sync -f`. No index, no names checked, no fsync before a rename, no
 * narinfo read: what is left is the copy, the hashing and the writeback, so
 * fodder's import against this floor shows its own overhead, and the floor against
 * `tar -xf && sync` what verifying costs on this machine.
 *
 * Usage: node dist/bench/verify-floor.js BUNDLE_DIR DEST_DIR [HASHES]
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { isMainThread, Worker, workerData } from 'node:worker_threads';
import { flatNarFrame, flatNarHasher } from '../src/nix-formats/nar.js';
import { writeAllSync } from '../src/mirror/file-io.js';

const THREADS = 2;

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out;
}

if (isMainThread) {
  const [src, dest, hashes = '2'] = process.argv.slice(2);
  if (!src || !dest || !['0', '1', '2'].includes(hashes)) throw new Error('usage: verify-floor.js BUNDLE_DIR DEST_DIR [0|1|2]');
  const files = ['tarballs', 'cache']
    .flatMap((d) => filesUnder(join(src, d)))
    .map((f) => ({ rel: relative(src, f), size: statSync(f).size }))
    .sort((a, b) => b.size - a.size);
  for (const d of new Set(files.map((f) => dirname(join(dest, f.rel))))) mkdirSync(d, { recursive: true });
  // the largest first, each to the thread with the fewest bytes so far: the threads end together
  const parts: string[][] = Array.from({ length: THREADS }, () => []);
  const load = new Array<number>(THREADS).fill(0);
  for (const f of files) {
    const i = load.indexOf(Math.min(...load));
    parts[i].push(f.rel);
    load[i] += f.size;
  }
  await Promise.all(
    parts.map(
      (part) =>
        new Promise((res, rej) => {
          const w = new Worker(new URL(import.meta.url), { workerData: { src, dest, files: part, hashes: Number(hashes) } });
          w.on('exit', res);
          w.on('error', rej);
        }),
    ),
  );
  execFileSync('sync', ['-f', dest]);
} else {
  const { src, dest, files, hashes } = workerData as { src: string; dest: string; files: string[]; hashes: number };
  const buf = Buffer.allocUnsafe(64 << 10);
  for (const rel of files) {
    const from = openSync(join(src, rel), 'r');
    const to = openSync(join(dest, rel), 'wx', 0o444);
    const size = statSync(join(src, rel)).size;
    const file = createHash('sha256');
    const nar = hashes > 1 ? flatNarHasher(flatNarFrame(size)) : null;
    for (let n; (n = readSync(from, buf, 0, buf.length, null)) > 0;) {
      const block = buf.subarray(0, n);
      writeAllSync(to, block, n);
      if (hashes > 0) file.update(block);
      nar?.update(block);
    }
    file.digest();
    nar?.digest();
    closeSync(from);
    closeSync(to);
  }
}
