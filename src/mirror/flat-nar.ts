/**
 * Flat sources in the binary cache with no second copy: the narinfo of a flat FOD output is
 * `cache/flat/<hash>.narinfo`, and the NAR it names, `nar/flat/<nix32 sha256 of the file>.nar`,
 * exists on no disk: `fodder serve` makes it from `tarballs/sha256/<hex>` as it sends it (the NAR
 * of one regular file is a fixed prefix, the file, zero padding and `)`). A flat output is never
 * executable (Nix refuses a flat fixed output with the executable bit: "should be a
 * non-executable regular file"), so the name needs only the file.
 *
 * The narinfos sit apart from the cache's own (`cache/<hash>.narinfo`) so that a copy of
 * `cache/` read as `file://` or by a static web server, which cannot make these NARs, never
 * sees an entry whose NAR it lacks; such a cache gets flat entries only as real NAR files
 * (`fetch.cache.flat`).
 */
import { close, closeSync, fstatSync, openSync, read } from 'node:fs';
import { join } from 'node:path';
import { decodeNix32, encodeNix32 } from '../nix-formats/hash.js';
import { flatNarFrame } from '../nix-formats/nar.js';

/** The folder of `cache/` holding the flat sources' narinfos. */
export const FLAT_NARINFO_DIR = 'flat';

/** `<52 nix32 characters>.nar`: a flat NAR's name under `nar/flat/`. */
export const FLAT_NAR_NAME = /^([0-9a-df-np-sv-z]{52})\.nar$/;

/** The narinfo `URL` of the NAR of the file whose sha256 is `sha256hex`. */
export function flatNarUrl(sha256hex: string): string {
  return `nar/flat/${encodeNix32(Buffer.from(sha256hex, 'hex'))}.nar`;
}

/**
 * The sha256 (hex) of the file a flat NAR's name (under `nar/flat/`) stands for, or null when it
 * is not exactly a name `flatNarUrl` writes (a nix32 spelling is canonical: it must encode back
 * to itself).
 */
export function flatNarSha256(name: string): string | null {
  const m = FLAT_NAR_NAME.exec(name);
  if (!m) return null;
  try {
    const bytes = decodeNix32(m[1], 32);
    return encodeNix32(bytes) === m[1] ? bytes.toString('hex') : null;
  } catch {
    return null;
  }
}

/** The sha256 (hex) of the file a narinfo `URL` names, or null when it is no flat NAR's. */
export function flatNarUrlSha256(url: string): string | null {
  return url.startsWith('nar/flat/') ? flatNarSha256(url.slice('nar/flat/'.length)) : null;
}

/** Where the hashed mirror holds the file of a flat NAR. */
export function flatNarSource(mirrorDir: string, sha256hex: string): string {
  return join(mirrorDir, 'tarballs', 'sha256', sha256hex);
}

/** An open file of the mirror and the NAR made of it. */
export interface FlatNarSource {
  fd: number;
  /** the file's size */
  size: number;
  prefix: Buffer;
  suffix: Buffer;
  narSize: number;
  /** the file's modification time */
  mtime: Date;
}

/** Opens the file of a flat NAR (it stays the same file whatever happens to its name meanwhile); null when absent. */
export function openFlatNar(path: string): FlatNarSource | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    return null;
  }
  return { fd, size: st.size, mtime: st.mtime, ...flatNarFrame(st.size) };
}

/** Bytes read from the file per chunk. */
const CHUNK = 1 << 20;

/**
 * Bytes `start`..`end` (inclusive) of the NAR of `src`, in chunks: the part of the prefix, of
 * the file and of the suffix that fall in the range. Closes the file when done or abandoned.
 */
export async function* flatNarBytes(src: FlatNarSource, start: number, end: number): AsyncGenerator<Buffer> {
  const { prefix, suffix, size, fd } = src;
  try {
    const part = (buf: Buffer, at: number) => buf.subarray(Math.max(0, start - at), Math.max(0, Math.min(buf.length, end + 1 - at)));
    const head = part(prefix, 0);
    if (head.length > 0) yield head;
    const from = Math.max(0, start - prefix.length);
    const to = Math.min(size, end + 1 - prefix.length); // exclusive
    for (let pos = from; pos < to;) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, to - pos));
      const n = await readAt(fd, buf, pos);
      if (n === 0) throw new Error(`the file ended at byte ${pos} of ${size}`);
      pos += n;
      yield n === buf.length ? buf : buf.subarray(0, n);
    }
    const tail = part(suffix, prefix.length + size);
    if (tail.length > 0) yield tail;
  } finally {
    close(fd, () => undefined);
  }
}

/** A positioned read on libuv's threads, so a large file never blocks the event loop. */
function readAt(fd: number, buf: Buffer, pos: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, 0, buf.length, pos, (err, n) => (err ? reject(err) : resolve(n))));
}
