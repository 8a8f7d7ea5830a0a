import { createHash, type Hash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { HASH_ALGOS, type HashAlgo } from '../nix-formats/hash.js';
import type { Digests } from './types.js';

/**
 * Hashing while a download is written. Every file gets all four digests (md5, sha1, sha256,
 * sha512), since the mirror answers to each. Small files are hashed inline from the chunks;
 * large ones by worker threads that read the file behind the writer ("trailing"), so the main
 * thread only moves bytes and four hashes of a 1 GiB file run on all cores while it arrives.
 * A trailing hasher reads the file from byte 0, which is also what makes resuming a partial
 * download from an earlier try or run possible.
 */
export interface Hasher {
  /** called after `chunk` was written; `written` is the file's size now */
  update(chunk: Buffer, written: number): void;
  /** the digests once the file is complete at `size` bytes */
  finish(size: number): Promise<Digests>;
  abort(): void;
}

/** Hashes chunks on the calling thread. Only for a download that starts at byte 0. */
export function createInlineHasher(): Hasher {
  const hashes: [HashAlgo, Hash][] = HASH_ALGOS.map((a) => [a, createHash(a)]);
  return {
    update(chunk) { for (const [, h] of hashes) h.update(chunk); },
    async finish() { return Object.fromEntries(hashes.map(([a, h]) => [a, h.digest('hex')])) as Digests; },
    abort() { /* nothing held */ },
  };
}

// The worker is plain CommonJS evaluated from a string, so it runs the same from src/ under
// vitest and from dist/. It reads each job's file up to the size the writer announced.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');
const algos = workerData.algos;
const buf = Buffer.allocUnsafe(workerData.chunk);
const jobs = new Map();
function fail(id, err) {
  const job = jobs.get(id);
  if (job) { try { fs.closeSync(job.fd); } catch {} jobs.delete(id); }
  parentPort.postMessage({ type: 'error', id, message: String(err && err.message || err), code: err && err.code });
}
function pump(id) {
  const job = jobs.get(id);
  if (!job) return;
  try {
    while (job.pos < job.target) {
      const n = fs.readSync(job.fd, buf, 0, Math.min(buf.length, job.target - job.pos), job.pos);
      if (n === 0) throw new Error('file ended at byte ' + job.pos + ', expected ' + job.target);
      const view = n === buf.length ? buf : buf.subarray(0, n);
      for (const h of job.hashes) h.update(view);
      job.pos += n;
    }
    if (job.done) {
      fs.closeSync(job.fd);
      jobs.delete(id);
      const digests = {};
      algos.forEach((a, i) => { digests[a] = job.hashes[i].digest('hex'); });
      parentPort.postMessage({ type: 'done', id, digests });
    }
  } catch (err) { fail(id, err); }
}
parentPort.on('message', (m) => {
  if (m.type === 'start') {
    try { jobs.set(m.id, { fd: fs.openSync(m.path, 'r'), pos: 0, target: 0, done: false, hashes: algos.map((a) => crypto.createHash(a)) }); }
    catch (err) { fail(m.id, err); }
  } else if (m.type === 'advance') {
    const job = jobs.get(m.id);
    if (!job) return;
    job.target = m.written; job.done = m.done;
    pump(m.id);
  } else if (m.type === 'abort') {
    const job = jobs.get(m.id);
    if (job) { try { fs.closeSync(job.fd); } catch {} jobs.delete(m.id); }
  }
});
`;

interface PoolWorker { worker: Worker; algos: HashAlgo[] }

interface Job {
  remaining: number;
  digests: Partial<Digests>;
  resolve: (d: Digests) => void;
  reject: (e: Error) => void;
}

/** Minimum bytes between two "advance" messages to the workers. */
const ADVANCE_STEP = 1 << 20;

/** A set of hashing threads shared by all downloads of a run. `close()` when done. */
export interface HashPool {
  /** a trailing hasher for the file at `path`, which the caller is writing */
  trailing(path: string): Hasher;
  close(): Promise<void>;
}

/** Splits the four algorithms over the cores: about equal work per thread (md5+sha1 ~ sha256+sha512). */
function algoGroups(): HashAlgo[][] {
  return availableParallelism() >= 2 ? [['md5', 'sha1'], ['sha256', 'sha512']] : [[...HASH_ALGOS]];
}

export function createHashPool(): HashPool {
  let workers: PoolWorker[] | null = null;
  const jobs = new Map<number, Job>();
  let nextId = 1;

  const onMessage = (m: { type: string; id: number; digests?: Partial<Digests>; message?: string }) => {
    const job = jobs.get(m.id);
    if (!job) return;
    if (m.type === 'done') {
      Object.assign(job.digests, m.digests);
      if (--job.remaining === 0) { jobs.delete(m.id); refCount(); job.resolve(job.digests as Digests); }
    } else if (m.type === 'error') {
      jobs.delete(m.id); refCount();
      job.reject(new Error(`hashing failed: ${m.message}`));
    }
  };

  // workers hold the process open only while a job is running
  const refCount = () => {
    for (const w of workers ?? []) { if (jobs.size > 0) w.worker.ref(); else w.worker.unref(); }
  };

  const ensure = (): PoolWorker[] => {
    if (workers) return workers;
    workers = algoGroups().map((algos) => {
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { algos, chunk: 1 << 20 } });
      worker.on('message', onMessage);
      worker.on('error', (err) => { for (const [id, job] of jobs) { jobs.delete(id); job.reject(err); } });
      worker.unref();
      return { worker, algos };
    });
    return workers;
  };

  return {
    trailing(path: string): Hasher {
      const pool = ensure();
      const id = nextId++;
      let posted = 0;
      let finished: Promise<Digests> | null = null;
      const post = (m: object) => { for (const w of pool) w.worker.postMessage(m); };
      const done = new Promise<Digests>((resolve, reject) => {
        jobs.set(id, { remaining: pool.length, digests: {}, resolve, reject });
      });
      done.catch(() => undefined); // observed through finish()
      refCount();
      post({ type: 'start', id, path });
      return {
        update(_chunk, written) {
          if (written - posted >= ADVANCE_STEP) { posted = written; post({ type: 'advance', id, written, done: false }); }
        },
        finish(size) {
          if (!finished) { post({ type: 'advance', id, written: size, done: true }); finished = done; }
          return finished;
        },
        abort() {
          post({ type: 'abort', id });
          const job = jobs.get(id);
          if (job) { jobs.delete(id); refCount(); job.reject(new Error('aborted')); }
        },
      };
    },
    async close() {
      const ws = workers ?? [];
      workers = null;
      await Promise.all(ws.map((w) => w.worker.terminate()));
    },
  };
}

/** Hashes a whole file with all four algorithms (used by `fodder verify` and resumption checks). */
export async function hashFile(pool: HashPool, path: string, size: number): Promise<Digests> {
  const h = pool.trailing(path);
  return h.finish(size);
}
