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

const failure = (err: unknown): TrailingResult => {
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
    const nar = task.narFrame ? createHash('sha256').update(task.narFrame.prefix) : null;
    if (nar) hashes.push(nar);
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
          pos += n;
        }
        if (m.done) {
          const digests = Object.fromEntries(task.algos.map((a, i) => [a, hashes[i].digest('hex')]));
          end(nar ? { ok: true, digests, narHash: nar.update(task.narFrame!.suffix).digest('hex') } : { ok: true, digests });
        }
      } catch (err) {
        end(failure(err));
      }
    });
    port.on('close', () => end(null));
  });
}
