/**
 * `narHash` with the hashing on another core: the calling thread walks the tree and serialises
 * the NAR (src/mirror/nar.ts), a worker thread hashes it. On a source tree (many small files)
 * the walk and the hash cost about the same, so overlapping them beats `nix-hash`, which does
 * both on one thread. The chunks' memory is moved to the worker, not copied; at most IN_FLIGHT
 * bytes wait for it. One worker serves every caller and does not keep the process alive while
 * idle.
 */
import { Worker } from 'node:worker_threads';
import type { HashAlgo } from '../graph/types.js';
import { narStream, type NarHashResult } from './nar.js';

/** Bytes handed to the worker per message. */
const BATCH = 1 << 20;
/** Bytes sent but not yet hashed before the walker waits. */
const IN_FLIGHT = 16 << 20;

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const crypto = require('node:crypto');
const jobs = new Map();
parentPort.on('message', (m) => {
  if (m.type === 'start') { jobs.set(m.id, crypto.createHash(m.algo)); return; }
  const h = jobs.get(m.id);
  if (!h) return;
  if (m.type === 'data') {
    let n = 0;
    for (let i = 0; i < m.buffers.length; i++) { h.update(new Uint8Array(m.buffers[i], m.offsets[i], m.lengths[i])); n += m.lengths[i]; }
    parentPort.postMessage({ type: 'ack', id: m.id, bytes: n });
  } else if (m.type === 'end') {
    jobs.delete(m.id);
    parentPort.postMessage({ type: 'done', id: m.id, hex: h.digest('hex') });
  } else if (m.type === 'abort') {
    jobs.delete(m.id);
  }
});
`;

interface Job {
  acked: number;
  wake: (() => void) | null;
  done: ((hex: string) => void) | null;
  fail: (e: Error) => void;
}

let worker: Worker | null = null;
const jobs = new Map<number, Job>();
let nextId = 1;

function ensureWorker(): Worker {
  if (worker) return worker;
  const w = new Worker(WORKER_SOURCE, { eval: true });
  w.on('message', (m: { type: string; id: number; bytes?: number; hex?: string }) => {
    const job = jobs.get(m.id);
    if (!job) return;
    if (m.type === 'ack') {
      job.acked += m.bytes!;
      const wake = job.wake;
      job.wake = null;
      wake?.();
    } else if (m.type === 'done') {
      jobs.delete(m.id);
      refresh();
      job.done?.(m.hex!);
    }
  });
  w.on('error', (e) => { for (const [id, job] of jobs) { jobs.delete(id); job.fail(e); } worker = null; });
  w.unref();
  worker = w;
  return w;
}

function refresh(): void {
  if (!worker) return;
  if (jobs.size > 0) worker.ref(); else worker.unref();
}

/** What `nix-hash --type <algo> <path>` prints (and the NAR's size), hashed on a worker thread. */
export async function narHashThreaded(path: string | Buffer, algo: HashAlgo = 'sha256'): Promise<NarHashResult> {
  const w = ensureWorker();
  const id = nextId++;
  let failure: Error | null = null;
  const job: Job = { acked: 0, wake: null, done: null, fail: (e) => { failure = e; const wake = job.wake; job.wake = null; wake?.(); } };
  jobs.set(id, job);
  refresh();
  w.postMessage({ type: 'start', id, algo });
  let sent = 0;
  let batch: Buffer[] = [];
  let batchBytes = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const buffers: ArrayBuffer[] = [];
    const offsets: number[] = [];
    const lengths: number[] = [];
    const transfer: ArrayBuffer[] = [];
    for (const c of batch) {
      const ab = c.buffer as ArrayBuffer;
      if (c.byteLength >= 4096 && ab.byteLength <= c.byteLength * 2 && !transfer.includes(ab)) {
        // the chunk owns its memory (narStream never reuses a chunk it yielded): move it
        buffers.push(ab); offsets.push(c.byteOffset); lengths.push(c.byteLength); transfer.push(ab);
      } else {
        // a small chunk in Node's shared buffer pool: copy it
        const copy = new Uint8Array(c.byteLength);
        copy.set(c);
        buffers.push(copy.buffer); offsets.push(0); lengths.push(c.byteLength); transfer.push(copy.buffer);
      }
    }
    w.postMessage({ type: 'data', id, buffers, offsets, lengths }, transfer);
    sent += batchBytes;
    batch = [];
    batchBytes = 0;
    while (sent - job.acked > IN_FLIGHT && !failure) await new Promise<void>((r) => { job.wake = r; });
  };
  try {
    for await (const chunk of narStream(path)) {
      batch.push(chunk);
      batchBytes += chunk.length;
      if (batchBytes >= BATCH) await flush();
      if (failure) throw failure;
    }
    await flush();
    const hex = await new Promise<string>((resolve, reject) => {
      job.done = resolve;
      job.fail = reject;
      w.postMessage({ type: 'end', id });
    });
    return { algo, hex, size: sent };
  } catch (e) {
    jobs.delete(id);
    refresh();
    w.postMessage({ type: 'abort', id });
    throw e;
  }
}
