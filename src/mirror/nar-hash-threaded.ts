/**
 * `narHash` spread over threads, for the archive and git plug-ins and the mirror.
 *
 * A tree of many small files is bound by the walk: a `stat`, `open`, `read`, `close` per file.
 * So for a directory the walk itself is split: this thread lists the top SPLIT_DEPTH levels and
 * writes their NAR framing, and every subtree below is a *unit* that one of two walker threads
 * serialises (a piscina task per walker and job, src/mirror/nar-walk-task.ts) while this thread
 * hashes the units' bytes in order. One such job runs at a time; a call made meanwhile (fetches
 * run several at once, and are parallel already), a single file, or a tree with fewer than two
 * units takes the older route: this thread walks, one worker thread hashes (a task per NAR,
 * src/mirror/nar-hash-task.ts). Each task gets a port of its own for its chunks, whose memory is
 * moved between threads, not copied. The threads do not keep the process alive while idle.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync } from 'node:fs';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { Piscina } from 'piscina';
import { piscina, workerScript } from '../config/defaults.js';
import { ErrorCode, FodderError } from '../errors.js';
import type { HashAlgo } from '../nix-formats/hash.js';
import { NAR_ENTRY_HEAD, NAR_TOKENS, narStream, narString, type NarHashResult } from '../nix-formats/nar.js';
import { addChunk, type ChunkAck, type ChunkBatch, type ChunkHashTask, type ChunkMessage } from './nar-hash-task.js';
import type { UnitAck, UnitData, WalkResult, WalkTask } from './nar-walk-task.js';

/** Bytes handed to the worker per message. */
const BATCH = 1 << 20;
/** Bytes sent but not yet hashed before the walker waits. */
const IN_FLIGHT = 16 << 20;

/** NARs the hashing thread hashes at once (fetches run several at once). */
const HASHES_PER_THREAD = 64;

let hasher: Piscina | null = null;

/** The one thread that hashes the NARs walked on this thread; idle, it does not hold the process open. */
function hashThread(): Piscina {
  return (hasher ??= new (piscina())({
    filename: workerScript('nar-hash-worker.js'),
    minThreads: 1,
    maxThreads: 1,
    concurrentTasksPerWorker: HASHES_PER_THREAD,
  }));
}

/** The NAR hash with one walking thread (this one) and the hashing on a worker thread. */
async function narHashOneWalker(path: string | Buffer, algo: HashAlgo): Promise<NarHashResult> {
  const { port1: port, port2 } = new MessageChannel();
  let acked = 0;
  let wake: (() => void) | null = null;
  let failure: unknown = null;
  const rouse = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  port.on('message', (m: ChunkAck) => {
    acked += m.bytes;
    rouse();
  });
  const task: ChunkHashTask = { algo, port: port2 };
  const result = hashThread().run(task, { transferList: [port2] }) as Promise<string | null>;
  result.catch((e: unknown) => {
    failure = e;
    rouse();
  });
  let sent = 0;
  let batch: Buffer[] = [];
  let batchBytes = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const moved: ChunkBatch = { buffers: [], offsets: [], lengths: [] };
    // a chunk that owns its memory (narStream never reuses a chunk it yielded) moves; a small
    // chunk in Node's shared buffer pool is copied
    for (const c of batch) addChunk(moved, c, c.byteLength >= 4096 && c.buffer.byteLength <= c.byteLength * 2);
    port.postMessage({ type: 'data', ...moved } satisfies ChunkMessage, moved.buffers);
    sent += batchBytes;
    batch = [];
    batchBytes = 0;
    while (sent - acked > IN_FLIGHT && !failure)
      await new Promise<void>((r) => {
        wake = r;
      });
  };
  try {
    for await (const chunk of narStream(path)) {
      batch.push(chunk);
      batchBytes += chunk.length;
      if (batchBytes >= BATCH) await flush();
      if (failure) throw failure;
    }
    await flush();
    if (failure) throw failure;
    port.postMessage({ type: 'end' } satisfies ChunkMessage);
    const hex = await result;
    if (hex === null) throw new Error('the NAR hashing thread lost the hash');
    return { algo, hex, size: sent };
  } finally {
    // abandons the task when the walk failed; after the end, the thread has closed it already
    port.close();
  }
}

/** What `nix-hash --type <algo> <path>` prints (and the NAR's size), computed on several threads. */
export async function narHashThreaded(path: string | Buffer, algo: HashAlgo = 'sha256'): Promise<NarHashResult> {
  if (parallelBusy) {
    routes.oneWalker++;
    return narHashOneWalker(path, algo);
  }
  parallelBusy = true;
  try {
    const plan = planUnits(typeof path === 'string' ? Buffer.from(path) : path);
    if (plan === null) {
      routes.oneWalker++;
      return await narHashOneWalker(path, algo);
    }
    routes.parallel++;
    return await hashUnits(plan, algo);
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
    const entries = readdirSync(path, { encoding: 'buffer', withFileTypes: true }).sort((a, b) => Buffer.compare(a.name, b.name));
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

interface Received {
  chunks: Uint8Array[];
  ended: boolean;
}

/** Idle walkers are stopped after this long: a process that goes on to other work runs measurably slower beside them. */
const WALKER_IDLE_MS = 5000;
let walkerPool: Piscina | null = null;

function walkers(): Piscina {
  return (walkerPool ??= new (piscina())({ filename: workerScript('nar-walk-worker.js'), minThreads: 0, maxThreads: WALKERS, idleTimeout: WALKER_IDLE_MS }));
}

async function hashUnits(plan: Plan, algo: HashAlgo): Promise<NarHashResult> {
  const data = new Map<number, Received>();
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const rouse = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const assigned: WalkTask['units'][] = Array.from({ length: WALKERS }, () => []);
  for (const item of plan) {
    if (Buffer.isBuffer(item)) continue;
    assigned[item.unit % WALKERS].push({ index: item.unit, path: new Uint8Array(item.path) });
  }
  const finished: Promise<void>[] = [];
  const ports: MessagePort[] = assigned.map((units) => {
    const { port1, port2 } = new MessageChannel();
    port1.on('message', (m: UnitData) => {
      let d = data.get(m.unit);
      if (!d) {
        d = { chunks: [], ended: false };
        data.set(m.unit, d);
      }
      for (let i = 0; i < m.buffers.length; i++) d.chunks.push(new Uint8Array(m.buffers[i], m.offsets[i], m.lengths[i]));
      if (m.end) d.ended = true;
      rouse();
    });
    const task: WalkTask = { units, port: port2 };
    finished.push(
      (walkers().run(task, { transferList: [port2] }) as Promise<WalkResult>)
        .then(
          (r) => {
            if (r) failure ??= r.code ? new FodderError(r.code as ErrorCode, r.message, {}) : new Error(r.message);
          },
          (e: Error) => {
            failure ??= new Error(`NAR walker thread failed: ${e.message}`);
          },
        )
        .finally(rouse),
    );
    return port1;
  });
  try {
    const hash = createHash(algo);
    let size = 0;
    for (const item of plan) {
      if (Buffer.isBuffer(item)) {
        hash.update(item);
        size += item.length;
        continue;
      }
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
          ports[item.unit % WALKERS].postMessage({ bytes: n, buffers: back } satisfies UnitAck, back);
        }
        if (d?.ended) {
          data.delete(item.unit);
          break;
        }
        await new Promise<void>((r) => {
          wake = r;
        });
      }
    }
    // each walker ends once the last of its memory is back
    await Promise.all(finished);
    return { algo, hex: hash.digest('hex'), size };
  } finally {
    // abandons the walkers' tasks when the hash failed
    for (const p of ports) p.close();
  }
}
