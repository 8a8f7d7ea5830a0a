/**
 * What a hashing thread does for one file (workers/hash-worker.ts, run by the pool of
 * `createHashPool` in hashing.ts): reads the file behind its writer, up to the size the writer
 * announces on the task's port, and returns the digests once the writer says the file is complete.
 * Closing the port from the writer's side abandons the task.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import type { MessagePort } from 'node:worker_threads';
import type { HashAlgo } from '../nix-formats/hash.js';
import { flatNarHasher } from '../nix-formats/nar.js';
import { signedByAny } from '../nix-formats/narinfo.js';
import { writeAllSync } from './file-io.js';

export interface TrailingTask {
  path: string;
  algos: HashAlgo[];
  /** receives `Advance` messages from the writer */
  port: MessagePort;
  /** also the sha256 of the file's NAR: these bytes before and after its contents (nix-formats' `flatNarFrame`) */
  narFrame?: { prefix: Uint8Array; suffix: Uint8Array };
}

/** The file has `written` bytes now; `done`: it is complete at that size. */
export interface Advance {
  written: number;
  done: boolean;
}

/** The digests (hex) of the task's algorithms; null when the writer abandoned the task. */
export type TrailingResult =
  { ok: true; digests: Partial<Record<HashAlgo, string>>; narHash?: string } | { ok: false; code: string | null; message: string } | null;

/** One read buffer per thread: the reads of a thread's tasks never interleave. */
const buf = Buffer.allocUnsafe(1 << 20);

const failure = (err: unknown): { ok: false; code: string | null; message: string } => {
  const e = err as { code?: string; message?: string };
  return { ok: false, code: e.code ?? null, message: e.message ?? String(err) };
};

export function hashTrailing(task: TrailingTask): Promise<TrailingResult> {
  const { port } = task;
  let fd: number;
  try {
    fd = openSync(task.path, 'r');
  } catch (err) {
    port.close();
    return Promise.resolve(failure(err));
  }
  return new Promise((resolve) => {
    let pos = 0;
    let settled = false;
    const hashes = task.algos.map((a) => createHash(a));
    const nar = task.narFrame ? flatNarHasher(task.narFrame) : null;
    const end = (result: TrailingResult) => {
      if (settled) return;
      settled = true;
      port.removeAllListeners();
      port.close();
      try {
        closeSync(fd);
      } catch {
        /* closing is all that is left */
      }
      resolve(result);
    };
    port.on('message', (m: Advance) => {
      try {
        while (pos < m.written) {
          const n = readSync(fd, buf, 0, Math.min(buf.length, m.written - pos), pos);
          if (n === 0) throw new Error(`file ended at byte ${pos}, expected ${m.written}`);
          const view = n === buf.length ? buf : buf.subarray(0, n);
          for (const h of hashes) h.update(view);
          nar?.update(view);
          pos += n;
        }
        if (m.done) {
          const digests = Object.fromEntries(task.algos.map((a, i) => [a, hashes[i].digest('hex')]));
          end(nar ? { ok: true, digests, narHash: nar.digest() } : { ok: true, digests });
        }
      } catch (err) {
        end(failure(err));
      }
    });
    port.on('close', () => end(null));
  });
}

/** Copy `size` bytes of `src` from `offset` (a bundle's file, or a member of a tar file) into the new file `dest`, hashing them. */
export interface CopyTask {
  src: string;
  offset: number;
  size: number;
  /** created (it must not exist) with `mode`; left in place on failure for the caller to remove */
  dest: string;
  /** the new file's mode: 0444 for a tarball (the hashed mirror's own), 0644 for a NAR file */
  mode: number;
  algos: HashAlgo[];
  /** also the sha256 of the file's NAR: these bytes before and after its contents (nix-formats' `flatNarFrame`) */
  narFrame?: { prefix: Uint8Array; suffix: Uint8Array };
}

export type CopyResult = { ok: true; digests: Partial<Record<HashAlgo, string>>; narHash?: string } | { ok: false; code: string | null; message: string };

/**
 * The copy's block: writes of 1 MiB ran at a quarter of the speed of 64 KiB ones here
 * (`bench:bundle`, docs/performance.md), in the kernel.
 */
const copyBuf = Buffer.allocUnsafe(64 << 10);

/**
 * Runs a CopyTask on this thread: each block is read once into the thread's buffer, written and
 * hashed from it while it is in the CPU's cache. Synchronous: a thread copies one file at a time.
 */
export function copyHashed(task: CopyTask): CopyResult {
  const buf = copyBuf;
  let src = -1;
  let dest = -1;
  try {
    src = openSync(task.src, 'r');
    dest = openSync(task.dest, 'wx', task.mode);
    const hashes = task.algos.map((a) => createHash(a));
    const nar = task.narFrame ? flatNarHasher(task.narFrame) : null;
    for (let pos = 0; pos < task.size;) {
      const n = readSync(src, buf, 0, Math.min(buf.length, task.size - pos), task.offset + pos);
      if (n === 0) throw new Error(`${task.src} ended ${pos} bytes into ${task.size}`);
      const view = n === buf.length ? buf : buf.subarray(0, n);
      writeAllSync(dest, view, n);
      for (const h of hashes) h.update(view);
      nar?.update(view);
      pos += n;
    }
    const digests = Object.fromEntries(task.algos.map((a, i) => [a, hashes[i].digest('hex')]));
    return nar ? { ok: true, digests, narHash: nar.digest() } : { ok: true, digests };
  } catch (err) {
    return failure(err);
  } finally {
    for (const fd of [src, dest]) if (fd >= 0) closeSync(fd);
  }
}

/** Narinfo signatures to check on a hashing thread: each item's fingerprint against its signatures. */
export interface SigTask {
  items: { fingerprint: string; sigs: string[] }[];
  /** public keys, `name:base64` */
  keys: string[];
}

/** Runs a SigTask on this thread: for each item, whether one of its signatures is a valid one by one of the keys. */
export function verifySigs(task: SigTask): boolean[] {
  return task.items.map((i) => signedByAny(i.fingerprint, i.sigs, task.keys));
}
