import { read } from 'node:fs';

/** Reads up to `length` bytes at `position` of `fd` into `buf` from `at`, on libuv's threads (a large file never blocks the event loop): the bytes read. */
export function readAt(fd: number, buf: Buffer, at: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, at, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}
