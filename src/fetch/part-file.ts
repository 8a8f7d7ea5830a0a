import { closeSync, fdatasync, fsync, openSync, writeSync, statSync, ftruncateSync } from 'node:fs';
import { promisify } from 'node:util';

const fsyncAsync = promisify(fsync);
const fdatasyncAsync = promisify(fdatasync);

/** Bytes written between two background flushes, so the final fsync has little left to do. */
const FLUSH_STEP = 64 << 20;

/**
 * A download being written: synchronous writes (the page cache absorbs them; measured faster
 * than the thread-pool path on loopback), a background fdatasync every 64 MiB, a final fsync
 * before anyone may link or rename the file.
 */
export interface PartFile {
  readonly path: string;
  /** bytes in the file */
  readonly size: number;
  write(chunk: Buffer): void;
  /** empties the file (a try restarting from byte 0) */
  truncate(): void;
  /** waits for flushes, fsyncs and closes */
  syncAndClose(): Promise<void>;
  /** closes without syncing (the file is going to be deleted or resumed later) */
  close(): void;
}

/** The size of an existing partial file, 0 when there is none. */
export function partSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Opens `path` for writing: appending after its bytes when `resume` (it must exist), emptied otherwise. */
export function openPartFile(path: string, resume: boolean): PartFile {
  const fd = openSync(path, resume ? 'r+' : 'w', 0o644);
  let size = resume ? partSize(path) : 0;
  let flushedAt = size;
  let flushing: Promise<void> | null = null;
  let closed = false;
  return {
    path,
    get size() {
      return size;
    },
    write(chunk) {
      let off = 0;
      while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off, size + off);
      size += chunk.length;
      if (size - flushedAt >= FLUSH_STEP && !flushing) {
        flushedAt = size;
        flushing = fdatasyncAsync(fd)
          .catch(() => undefined)
          .finally(() => {
            flushing = null;
          });
      }
    },
    truncate() {
      ftruncateSync(fd, 0);
      size = 0;
      flushedAt = 0;
    },
    async syncAndClose() {
      if (flushing) await flushing;
      await fsyncAsync(fd);
      closed = true;
      closeSync(fd);
    },
    close() {
      if (closed) return;
      closed = true;
      // a background flush may still hold the fd: close once it ends
      if (flushing) void flushing.then(() => closeSync(fd));
      else closeSync(fd);
    },
  };
}
