/**
 * A binary cache's NAR files as fodder writes them: the NAR of a path, compressed (none or xz),
 * streamed to a temporary file beside its final name and renamed once complete. The narinfo
 * that describes the file is a Nix format (src/nix-formats/narinfo.ts); writing the file is the
 * mirror's storage.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ErrorCode, FodderError } from '../errors.js';
import { startProcess } from '../process.js';
import { toNix32, type HashValue } from '../nix-formats/hash.js';
import { narOfFile, narStream } from '../nix-formats/nar.js';

/** Error code of this module. */
export const COMPRESS_FAILED = ErrorCode.COMPRESS_FAILED;

/** Compressions fodder writes; Nix reads both. */
export type Compression = 'none' | 'xz';

/** File name suffix Nix uses for a compression. */
export function narFileSuffix(compression: Compression): string {
  return compression === 'xz' ? '.nar.xz' : '.nar';
}

/**
 * `source` compressed: `none` passes it through, `xz` pipes it through the `xz` binary
 * (`level` 0-9, default 6 as Nix; `threads` default 1) with backpressure both ways.
 */
export async function* compressedStream(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  compression: Compression,
  opts: { level?: number; threads?: number } = {},
): AsyncGenerator<Buffer> {
  if (compression === 'none') {
    for await (const c of source) yield Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    return;
  }
  const child = startProcess('xz', ['-z', '-c', `-${opts.level ?? 6}`, `-T${opts.threads ?? 1}`], { stdin: 'pipe', stdout: 'pipe' });
  const exited = child.exit.then((e) => e.code);
  const feeding = pipeline(Readable.from(source, { objectMode: false }), child.stdin!);
  exited.catch(() => undefined);
  feeding.catch(() => undefined);
  try {
    for await (const c of child.stdout!) yield c;
    await feeding;
    const code = await exited;
    if (code !== 0) throw new FodderError(COMPRESS_FAILED, `xz exited with ${code}: ${child.stderr()}`, { code, stderr: child.stderr() });
  } catch (e) {
    if (e instanceof FodderError) throw e;
    throw new FodderError(COMPRESS_FAILED, `xz compression failed: ${(e as Error).message}`, { stderr: child.stderr() });
  } finally {
    child.kill('SIGTERM');
  }
}

/** What `writeNarFile` wrote: the narinfo fields it determines. */
export interface WrittenNar {
  url: string;
  compression: Compression;
  fileHash: HashValue;
  fileSize: number;
  narHash: HashValue;
  narSize: number;
}

/**
 * Serialise `sourcePath` as a NAR (a flat file node when `flatFile`), compress it and write it
 * to `<cacheDir>/nar/<nix32 file hash><suffix>`: streamed through a temporary file in the same
 * directory, renamed once complete. Returns the URL (relative to the cache) and both hashes.
 */
export async function writeNarFile(
  sourcePath: string,
  cacheDir: string,
  compression: Compression,
  opts: { flatFile?: boolean; level?: number; threads?: number } = {},
): Promise<WrittenNar> {
  const narDir = join(cacheDir, 'nar');
  await mkdir(narDir, { recursive: true });
  const narHasher = createHash('sha256');
  let narSize = 0;
  const nar = opts.flatFile ? narOfFile(sourcePath) : narStream(sourcePath);
  const counted = (async function* () {
    for await (const c of nar) {
      narHasher.update(c);
      narSize += c.length;
      yield c;
    }
  })();
  const tmp = join(narDir, `.tmp-${randomBytes(8).toString('hex')}`);
  // uncompressed, the file is the NAR: one hash serves both
  const fileHasher = compression === 'none' ? null : createHash('sha256');
  let fileSize = 0;
  const fh = await open(tmp, 'wx');
  // one write in flight while the next chunk is hashed, and a background fdatasync every
  // FLUSH_STEP bytes so that the final fsync does not wait for the whole file's writeback
  let writing: Promise<unknown> = Promise.resolve();
  let flushing: Promise<unknown> | null = null;
  let unflushed = 0;
  const writeAll = async (c: Buffer) => {
    let done = 0;
    while (done < c.length) done += (await fh.write(c, done, c.length - done)).bytesWritten;
  };
  try {
    for await (const c of compressedStream(counted, compression, opts)) {
      fileHasher?.update(c);
      fileSize += c.length;
      await writing;
      writing = writeAll(c);
      writing.catch(() => undefined); // awaited at the next chunk; never an unhandled rejection meanwhile
      unflushed += c.length;
      if (unflushed >= FLUSH_STEP && !flushing) {
        unflushed = 0;
        const w = writing;
        flushing = w
          .then(() => fh.datasync())
          .catch(() => undefined)
          .finally(() => {
            flushing = null;
          });
      }
    }
    await writing;
    await flushing;
    await fh.sync();
  } catch (e) {
    await writing.catch(() => undefined);
    await flushing;
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  const narDigest = narHasher.digest('hex');
  const fileHash: HashValue = { algo: 'sha256', hex: fileHasher ? fileHasher.digest('hex') : narDigest };
  const fileName = `${toNix32(fileHash)}${narFileSuffix(compression)}`;
  await rename(tmp, join(narDir, fileName));
  return { url: `nar/${fileName}`, compression, fileHash, fileSize, narHash: { algo: 'sha256', hex: narDigest }, narSize };
}

/** Bytes written between two background fdatasyncs of a NAR file. */
const FLUSH_STEP = 64 << 20;
