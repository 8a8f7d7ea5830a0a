import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { MessageChannel } from 'node:worker_threads';
import type { Piscina } from 'piscina';
import { piscina, workerScript } from '../config/defaults.js';
import { HASH_ALGOS, type HashAlgo } from '../nix-formats/hash.js';
import { flatNarFrame, flatNarHasher } from '../nix-formats/nar.js';
import type { Advance, CopyResult, CopyTask, SigTask, TrailingResult, TrailingTask } from './hash-task.js';
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
    update(chunk) {
      for (const [, h] of hashes) h.update(chunk);
    },
    async finish() {
      return Object.fromEntries(hashes.map(([a, h]) => [a, h.digest('hex')])) as Digests;
    },
    abort() {
      /* nothing held */
    },
  };
}

/** Minimum bytes between two "advance" messages to the hashing threads. */
const ADVANCE_STEP = 1 << 20;
/** Files a thread hashes at once (its reads interleave; a download waiting for a free slot would wait for another download). */
const TASKS_PER_THREAD = 256;

/** A set of hashing threads shared by all downloads of a run. `close()` when done. */
export interface HashPool {
  /** a trailing hasher for the file at `path`, which the caller is writing */
  trailing(path: string): Hasher;
  /** the complete file's sha256 and its NAR's, read once on a thread */
  flatNar(path: string, size: number): Promise<FlatNarDigests>;
  /**
   * copies and hashes a file (or a range of one) on a thread: the digests of `task.algos` (and
   * the NAR's sha256 with `task.narFrame`); rejects when reading or writing fails
   */
  copy(task: CopyTask): Promise<{ digests: Partial<Digests>; narHash?: string }>;
  /** narinfo signatures checked on a thread (hash-task.ts's `verifySigs`): one boolean per item */
  verifySigs(task: SigTask): Promise<boolean[]>;
  close(): Promise<void>;
}

/** A flat file's sha256 and the sha256 and size of its NAR (a non-executable regular file), hex. */
export interface FlatNarDigests {
  sha256: string;
  narHash: string;
  narSize: number;
}

/** Splits the four algorithms over the cores: about equal work per thread (md5+sha1 ~ sha256+sha512). */
function algoGroups(): HashAlgo[][] {
  return availableParallelism() >= 2
    ? [
        ['md5', 'sha1'],
        ['sha256', 'sha512'],
      ]
    : [[...HASH_ALGOS]];
}

/**
 * One piscina thread per group of algorithms (workers/hash-worker.ts). A file is one task per
 * group, each told through its own port how far the writer has got; the threads hold the process
 * open only while a task runs.
 */
export function createHashPool(): HashPool {
  const groups = algoGroups();
  let pool: Piscina | null = null;
  const threads = () =>
    (pool ??= new (piscina())({
      filename: workerScript('hash-worker.js'),
      minThreads: groups.length,
      maxThreads: groups.length,
      concurrentTasksPerWorker: TASKS_PER_THREAD,
    }));

  return {
    trailing(path: string): Hasher {
      const p = threads();
      const ports = groups.map(() => new MessageChannel());
      const done = Promise.all(
        groups.map((algos, i) => {
          const task: TrailingTask = { path, algos, port: ports[i].port2 };
          return p.run(task, { transferList: [ports[i].port2] }) as Promise<TrailingResult>;
        }),
      ).then((results) => {
        const digests: Partial<Digests> = {};
        for (const r of results) {
          if (r === null) throw new Error('aborted');
          if (!r.ok) throw new Error(`hashing failed: ${r.message}`);
          Object.assign(digests, r.digests);
        }
        return digests as Digests;
      });
      done.catch(() => undefined); // observed through finish()
      let posted = 0;
      let finished: Promise<Digests> | null = null;
      const post = (m: Advance) => {
        for (const c of ports) c.port1.postMessage(m);
      };
      return {
        update(_chunk, written) {
          if (written - posted >= ADVANCE_STEP) {
            posted = written;
            post({ written, done: false });
          }
        },
        finish(size) {
          if (!finished) {
            post({ written: size, done: true });
            finished = done;
          }
          return finished;
        },
        abort() {
          for (const c of ports) c.port1.close();
        },
      };
    },
    async flatNar(path, size) {
      const channel = new MessageChannel();
      const { prefix, suffix, narSize } = flatNarFrame(size);
      const task: TrailingTask = { path, algos: ['sha256'], port: channel.port2, narFrame: { prefix, suffix } };
      const running = threads().run(task, { transferList: [channel.port2] }) as Promise<TrailingResult>;
      channel.port1.postMessage({ written: size, done: true } satisfies Advance);
      const r = await running;
      channel.port1.close();
      if (r === null) throw new Error('aborted');
      if (!r.ok) throw new Error(`hashing failed: ${r.message}`);
      return { sha256: r.digests.sha256!, narHash: r.narHash!, narSize };
    },
    async copy(task) {
      const r = (await threads().run(task, { name: 'copyHashed' })) as CopyResult;
      if (!r.ok) throw Object.assign(new Error(r.message), { code: r.code ?? undefined });
      return { digests: r.digests, narHash: r.narHash };
    },
    async verifySigs(task) {
      return (await threads().run(task, { name: 'verifySigs' })) as boolean[];
    },
    async close() {
      const p = pool;
      pool = null;
      await p?.destroy();
    },
  };
}

/** Hashes a whole file with all four algorithms (used by `fodder verify` and resumption checks). */
export async function hashFile(pool: HashPool, path: string, size: number): Promise<Digests> {
  const h = pool.trailing(path);
  return h.finish(size);
}

/**
 * `FlatNarDigests` of a file in the mirror: on a thread of `pool` when there is one and the file
 * is not small, else read here (a small file, or no pool: `fodder verify` of one entry, tests).
 */
export async function flatNarDigests(path: string, size: number, pool?: HashPool): Promise<FlatNarDigests> {
  if (pool && size > SMALL_FILE) return pool.flatNar(path, size);
  const frame = flatNarFrame(size);
  const file = createHash('sha256');
  const nar = flatNarHasher(frame);
  let read = 0;
  // a small file in one read of its size (a stream's 1 MiB buffer each, for thousands of small
  // files, kept the garbage collector busy: docs/performance.md, "Bundles")
  const chunks = size <= SMALL_FILE ? [await readFile(path)] : createReadStream(path, { highWaterMark: 1 << 20 });
  for await (const c of chunks) {
    file.update(c as Buffer);
    nar.update(c as Buffer);
    read += (c as Buffer).length;
  }
  if (read !== size) throw new Error(`${path} has ${read} bytes, expected ${size}`);
  return { sha256: file.digest('hex'), narHash: nar.digest(), narSize: frame.narSize };
}

/** One digest of a whole file, hex, read on this thread (a file already in the mirror, checked once). */
export async function fileDigest(path: string, algo: HashAlgo): Promise<string> {
  const h = createHash(algo);
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h.digest('hex');
}

/** Files up to this size are hashed on the calling thread. */
const SMALL_FILE = 1 << 20;
