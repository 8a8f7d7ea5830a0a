import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { FodderError, ErrorCode } from '../errors.js';
import type { StoreSource } from './types.js';

/**
 * Where the crawl's .drv files live. Nix writes them into a binary-cache store directory
 * (`file://DIR?compression=none`): one `<hash>.narinfo` and one `nar/<filehash>.nar` per store
 * path, no database, no lock files. Writing a .drv there costs Nix about half of what a chroot
 * store costs (whose SQLite registration rewrites some twenty pages per .drv), it needs no root
 * and no daemon, and every Nix command reads it (`nix-store --store file://DIR -qR`,
 * `nix show-derivation`, `nix-store --export`).
 *
 * Each worker thread writes into a directory of its own: slot 0 is the configured `DIR`, slot
 * k > 0 is `DIR-wk`. The crawl writes them; the nix fetcher reads them.
 */
export function slotStorePath(store: string, slot: number): string {
  return slot === 0 ? store : `${store}-w${slot}`;
}

/** The Nix store URL of a drv store directory. */
export function drvStoreUrl(dir: string): string {
  if (/[?#]/.test(dir)) {
    throw new FodderError(ErrorCode.CONFIG_INVALID, `store directory '${dir}' contains '?' or '#', which Nix reads as part of a store URL`, { store: dir });
  }
  return `file://${dir}?compression=none`;
}

/** Every store slot of a crawl's `--store` that exists on disk, slot 0 first. */
export function crawlDrvStores(store: string): string[] {
  const out: string[] = [];
  if (existsSync(store)) out.push(store);
  for (let slot = 1; existsSync(slotStorePath(store, slot)); slot++) out.push(slotStorePath(store, slot));
  return out;
}

/** The narinfo file of a store path in a drv store directory. */
export function narinfoFile(dir: string, storePath: string): string {
  const slash = storePath.lastIndexOf('/');
  return `${dir}/${storePath.slice(slash + 1, slash + 33)}.narinfo`;
}

/** True when `dir` holds `storePath`. */
export function drvStoreHas(dir: string, storePath: string): boolean {
  return existsSync(narinfoFile(dir, storePath));
}

// .drv files are read by the ten thousand: one buffer, reused, and no stat per file
let buf = Buffer.allocUnsafe(1 << 16);

function readInto(file: string): number {
  const fd = openSync(file, 'r');
  try {
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, n);
        buf = bigger;
      }
      const want = buf.length - n;
      const r = readSync(fd, buf, n, want, null);
      n += r;
      // a regular file gives less than asked only at its end: no second read to hear the end
      // (what was cut short anyway fails the NAR's and the narinfo's own checks)
      if (r < want) return n;
    }
  } finally {
    closeSync(fd);
  }
}

/** The narinfo of `storePath` read, and its NAR read into `buf`: the NAR's length and file, and the path's references. */
function readNarinfoAndNar(dir: string, storePath: string): { n: number; narFile: string; references: string[] } {
  const infoFile = narinfoFile(dir, storePath);
  // read first, then take `buf`: readInto may replace it with a bigger one (a narinfo past
  // 64 KiB, like a TeX Live bundle's with thousands of references, was read from the old one)
  const infoLength = readInto(infoFile);
  const info = buf.toString('latin1', 0, infoLength);
  const field = (name: string): string | null => {
    const key = `${name}: `;
    const line = info.startsWith(key) ? 0 : info.indexOf(`\n${key}`);
    if (line < 0) return null;
    const at = line === 0 && info.startsWith(key) ? 0 : line + 1;
    const end = info.indexOf('\n', at);
    return end < 0 ? null : info.slice(at + key.length, end);
  };
  const url = field('URL');
  if (url === null || field('Compression') !== 'none') throw new Error(`${infoFile} does not name an uncompressed NAR`);
  const storeDir = storePath.slice(0, storePath.lastIndexOf('/'));
  // Nix writes the line even when empty; without it the narinfo was cut short
  const refs = field('References');
  if (refs === null) throw new Error(`${infoFile} has no References line`);
  const references = refs
    .split(' ')
    .filter(Boolean)
    .map((r) => `${storeDir}/${r}`);
  const narFile = `${dir}/${url}`;
  return { n: readInto(narFile), narFile, references };
}

/**
 * The text of `storePath` (a .drv) from a drv store directory: its narinfo names the NAR file,
 * which holds one regular file (compression none, so the NAR is read as it is).
 */
export function readStoreText(dir: string, storePath: string): string {
  const { n, narFile } = readNarinfoAndNar(dir, storePath);
  // a NAR is a sequence of strings: 8-byte little-endian length, bytes, zero padding to 8
  let off = 0;
  const next = (): [number, number] => {
    if (off + 8 > n) throw new Error(`${narFile}: truncated NAR`);
    const len = buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * 2 ** 32;
    const start = off + 8;
    off = start + Math.ceil(len / 8) * 8;
    if (start + len > n) throw new Error(`${narFile}: truncated NAR`);
    return [start, len];
  };
  const token = (t: [number, number]) => buf.toString('latin1', t[0], t[0] + t[1]);
  if (token(next()) !== 'nix-archive-1' || token(next()) !== '(' || token(next()) !== 'type' || token(next()) !== 'regular') {
    throw new Error(`${narFile}: not the NAR of a regular file`);
  }
  let t = token(next());
  if (t === 'executable') {
    next();
    t = token(next());
  }
  if (t !== 'contents') throw new Error(`${narFile}: not the NAR of a regular file`);
  const [start, len] = next();
  return buf.toString('utf8', start, start + len);
}

/**
 * A store path that is not a .drv (an input source: a builder script, a patch from the package
 * set's tree, a `builtins.toFile`) from a drv store directory: its NAR and its references.
 */
export function readStoreSource(dir: string, storePath: string): StoreSource {
  const { n, narFile, references } = readNarinfoAndNar(dir, storePath);
  if (n < 16 || buf.toString('latin1', 8, 21) !== 'nix-archive-1') throw new Error(`${narFile}: not a NAR`);
  return { path: storePath, nar: Buffer.from(buf.subarray(0, n)), references };
}
