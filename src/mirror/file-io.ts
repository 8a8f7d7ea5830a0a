import { read, writeSync } from 'node:fs';

/** Reads up to `length` bytes at `position` of `fd` into `buf` from `at`, on libuv's threads (a large file never blocks the event loop): the bytes read. */
export function readAt(fd: number, buf: Buffer, at: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, at, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

/** Writes the first `length` bytes of `buf` to `fd` on this thread, however many writes that takes. */
export function writeAllSync(fd: number, buf: Uint8Array, length = buf.length): void {
  for (let off = 0; off < length;) off += writeSync(fd, buf, off, length - off);
}
