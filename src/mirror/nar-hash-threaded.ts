/**
 * `narHash` spread over threads, for the archive and git plug-ins and the mirror.
 *
 * A tree of many small files is bound by the walk: a `stat`, `open`, `read`, `close` per file.
 * So for a directory the walk itself is split: this thread lists the top SPLIT_DEPTH levels and
 * writes their NAR framing, and every subtree below is a *unit* that one of two walker threads
 * serialises (src/mirror/nar-walk-worker.ts) while this thread hashes the units' bytes in
 * order. One such job runs at a time; a call made meanwhile (fetches run several at once, and
 * are parallel already), a single file, or a tree with fewer than two units takes the older
 * route: this thread walks, one worker hashes. Chunks' memory is moved between threads, not
 * copied. Workers do not keep the process alive while idle.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { packageRoot } from '../config/defaults.js';
import { ErrorCode, FodderError } from '../errors.js';
import type { HashAlgo } from '../nix-formats/hash.js';
import { NAR_ENTRY_HEAD, NAR_TOKENS, narStream, narString, type NarHashResult } from '../nix-formats/nar.js';

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

/** The NAR hash with one walking thread (this one) and the hashing on a worker thread. */
async function narHashOneWalker(path: string | Buffer, algo: HashAlgo): Promise<NarHashResult> {
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

/** What `nix-hash --type <algo> <path>` prints (and the NAR's size), computed on several threads. */
export async function narHashThreaded(path: string | Buffer, algo: HashAlgo = 'sha256'): Promise<NarHashResult> {
  const file = walkerFile();
  if (parallelBusy || file === null) { routes.oneWalker++; return narHashOneWalker(path, algo); }
  parallelBusy = true;
  try {
    const plan = planUnits(typeof path === 'string' ? Buffer.from(path) : path);
    if (plan === null) { routes.oneWalker++; return await narHashOneWalker(path, algo); }
    routes.parallel++;
    return await hashUnits(plan, algo, file);
  } finally {
    parallelBusy = false;
  }
}

/** Levels of directories this thread lists itself; everything below is a unit for a walker. */
const SPLIT_DEPTH = 2;
const WALKERS = 2;
const MIN_DIR_UNITS = 8;

/** The NAR as literal framing and units (subtrees serialised by walkers), in order. */
type Plan = (Buffer | { unit: number; path: Buffer })[];

let parallelBusy = false;
const routes = { parallel: 0, oneWalker: 0 };

/** How many hashes took each route so far (for tests and benchmarks). */
export function narHashRoutes(): { parallel: number; oneWalker: number } {
  return { ...routes };
}

function walkerFile(): string | null {
  const beside = fileURLToPath(new URL('./nar-walk-worker.js', import.meta.url));
  if (existsSync(beside)) return beside;
  const built = join(packageRoot(), 'dist', 'src', 'mirror', 'nar-walk-worker.js');
  return existsSync(built) ? built : null;
}

/**
 * Null when splitting would not pay: the root is not a directory, or fewer than MIN_DIR_UNITS
 * units are directories (a small tree costs more in messages than a second walker saves).
 */
function planUnits(root: Buffer): Plan | null {
  if (!lstatSync(root).isDirectory()) return null;
  const plan: Plan = [NAR_TOKENS.magic];
  let units = 0;
  let dirUnits = 0;
  const dir = (path: Buffer, depth: number) => {
    plan.push(NAR_TOKENS.directoryOpen);
    const entries = readdirSync(path, { encoding: 'buffer', withFileTypes: true })
      .sort((a, b) => Buffer.compare(a.name, b.name));
    for (const e of entries) {
      const name = e.name as unknown as Buffer;
      plan.push(NAR_ENTRY_HEAD, narString(name), NAR_TOKENS.node);
      const child = Buffer.concat([path, SLASH, name]);
      if (depth + 1 < SPLIT_DEPTH && e.isDirectory()) dir(child, depth + 1);
      else {
        plan.push({ unit: units++, path: child });
        if (e.isDirectory()) dirUnits++;
      }
      plan.push(NAR_TOKENS.close); // the entry
    }
    plan.push(NAR_TOKENS.close); // the directory node
  };
  dir(root, 0);
  return dirUnits >= MIN_DIR_UNITS ? plan : null;
}

const SLASH = Buffer.from('/');

interface UnitData { chunks: Uint8Array[]; ended: boolean }

let walkers: Worker[] = [];
let nextJob = 1;
/** Messages for the running job go to this handler. */
let onWalkerMessage: ((m: WalkerMessage) => void) | null = null;

type WalkerMessage =
  | { type: 'data'; job: number; unit: number; buffers: ArrayBuffer[]; offsets: number[]; lengths: number[]; end: boolean }
  | { type: 'error'; job: number; code: ErrorCode | null; message: string };

/** Idle walkers are stopped after this long: a process that goes on to other work runs measurably slower beside them. */
const WALKER_IDLE_MS = 5000;
let idleTimer: NodeJS.Timeout | null = null;

function ensureWalkers(file: string): Worker[] {
  if (idleTimer) { clearTimeout(idleTimer); idleTimer = null; }
  if (walkers.length === WALKERS) return walkers;
  walkers = [];
  for (let k = 0; k < WALKERS; k++) {
    const w = new Worker(file);
    w.on('message', (m: WalkerMessage) => onWalkerMessage?.(m));
    w.on('error', (e) => {
      walkers = [];
      onWalkerMessage?.({ type: 'error', job: -1, code: null, message: `NAR walker thread failed: ${e.message}` });
    });
    w.unref();
    walkers.push(w);
  }
  return walkers;
}

async function hashUnits(plan: Plan, algo: HashAlgo, file: string): Promise<NarHashResult> {
  const ws = ensureWalkers(file);
  const job = nextJob++;
  const data = new Map<number, UnitData>();
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  onWalkerMessage = (m) => {
    if (m.job !== job && m.job !== -1) return;
    if (m.type === 'error') {
      failure ??= m.code ? new FodderError(m.code, m.message, {}) : new Error(m.message);
    } else {
      let d = data.get(m.unit);
      if (!d) { d = { chunks: [], ended: false }; data.set(m.unit, d); }
      for (let i = 0; i < m.buffers.length; i++) d.chunks.push(new Uint8Array(m.buffers[i], m.offsets[i], m.lengths[i]));
      if (m.end) d.ended = true;
    }
    const w = wake;
    wake = null;
    w?.();
  };
  for (const w of ws) w.ref();
  try {
    const assigned: { index: number; path: Uint8Array }[][] = ws.map(() => []);
    for (const item of plan) {
      if (Buffer.isBuffer(item)) continue;
      assigned[item.unit % ws.length].push({ index: item.unit, path: new Uint8Array(item.path) });
    }
    ws.forEach((w, k) => w.postMessage({ type: 'run', job, units: assigned[k] }));

    const hash = createHash(algo);
    let size = 0;
    for (const item of plan) {
      if (Buffer.isBuffer(item)) { hash.update(item); size += item.length; continue; }
      for (;;) {
        if (failure) throw failure;
        const d = data.get(item.unit);
        if (d && d.chunks.length > 0) {
          let n = 0;
          const back: ArrayBuffer[] = [];
          for (const c of d.chunks) {
            hash.update(c);
            n += c.byteLength;
            const ab = c.buffer as ArrayBuffer;
            if (!back.includes(ab)) back.push(ab);
          }
          d.chunks = [];
          size += n;
          // hashed: the memory goes back to the walker, which reuses it
          ws[item.unit % ws.length].postMessage({ type: 'ack', job, bytes: n, buffers: back }, back);
        }
        if (d?.ended) { data.delete(item.unit); break; }
        await new Promise<void>((r) => { wake = r; });
      }
    }
    return { algo, hex: hash.digest('hex'), size };
  } catch (e) {
    for (const w of ws) w.postMessage({ type: 'abort', job });
    throw e;
  } finally {
    onWalkerMessage = null;
    for (const w of ws) w.unref();
    idleTimer = setTimeout(() => {
      idleTimer = null;
      const stopping = walkers;
      walkers = [];
      for (const w of stopping) void w.terminate();
    }, WALKER_IDLE_MS);
    idleTimer.unref();
  }
}
