/**
 * What a walker thread of the parallel NAR hash does for one job (workers/nar-walk-worker.ts,
 * run by nar-hash-threaded.ts): serialises the NAR node of each unit (a subtree) it is given, in
 * order, and sends the bytes on the task's port in batches of about a megabyte, moving the
 * chunks' memory instead of copying it. It runs ahead of the consumer by at most IN_FLIGHT bytes,
 * and returns once the consumer has acknowledged all it sent (or has closed the port: abandoned).
 * Kept small: memory a thread has used stays in its malloc arena after it ends, and a larger
 * process forks its child processes (tar, git, Nix) more slowly (40 spawns: 142 ms fresh,
 * 197-214 ms after hashing a 256 MiB tree with 32 MiB in flight, 174 ms with 8 MiB).
 */
import type { MessagePort } from 'node:worker_threads';
import { NAR_TOKENS, narStreamWith } from '../nix-formats/nar.js';
import { addChunk, type ChunkBatch } from './nar-hash-task.js';

const BATCH = 1 << 20;
const IN_FLIGHT = 8 << 20;
/** `narStream` starts with the archive's magic string; a unit is only the node after it. */
const MAGIC_LENGTH = NAR_TOKENS.magic.length;

export interface WalkTask {
  units: { index: number; path: Uint8Array }[];
  port: MessagePort;
}

/** On the task's port, to the consumer: bytes of unit `unit`; `end`: its last. */
export type UnitData = { unit: number; end: boolean } & ChunkBatch;

/** Back on the port: this many bytes were hashed, and their memory, to reuse. */
export interface UnitAck {
  bytes: number;
  buffers: ArrayBuffer[];
}

/** null when every unit was sent; what failed (an unreadable or unsupported file) otherwise. */
export type WalkResult = { code: string | null; message: string } | null;

// memory the consumer handed back after hashing it, by size: reused instead of fresh pages;
// never more than what can be in flight, so an idle walker holds little
const pool = new Map<number, ArrayBuffer[]>();
let pooled = 0;
const alloc = (size: number): Buffer => {
  const ab = pool.get(size)?.pop();
  if (!ab) return Buffer.allocUnsafeSlow(size);
  pooled -= ab.byteLength;
  return Buffer.from(ab);
};
const giveBack = (buffers: ArrayBuffer[]): void => {
  for (const ab of buffers) {
    if (pooled + ab.byteLength > IN_FLIGHT) return;
    const list = pool.get(ab.byteLength) ?? pool.set(ab.byteLength, []).get(ab.byteLength)!;
    list.push(ab);
    pooled += ab.byteLength;
  }
};

export async function walkUnits({ units, port }: WalkTask): Promise<WalkResult> {
  let sent = 0;
  let acked = 0;
  let aborted = false;
  let wake: (() => void) | null = null;
  const rouse = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  port.on('message', (m: UnitAck) => {
    giveBack(m.buffers);
    acked += m.bytes;
    rouse();
  });
  port.on('close', () => {
    aborted = true;
    rouse();
  });
  const waitWhile = async (cond: () => boolean) => {
    while (cond() && !aborted)
      await new Promise<void>((r) => {
        wake = r;
      });
  };
  try {
    for (const unit of units) {
      let skip = MAGIC_LENGTH;
      let batch: ChunkBatch = { buffers: [], offsets: [], lengths: [] };
      let bytes = 0;
      const post = async (end: boolean) => {
        port.postMessage({ unit: unit.index, end, ...batch } satisfies UnitData, batch.buffers);
        sent += bytes;
        batch = { buffers: [], offsets: [], lengths: [] };
        bytes = 0;
        await waitWhile(() => sent - acked > IN_FLIGHT);
      };
      for await (const c of narStreamWith(Buffer.from(unit.path.buffer, unit.path.byteOffset, unit.path.byteLength), alloc)) {
        if (aborted) return null;
        let chunk: Buffer = c;
        if (skip > 0) {
          const k = Math.min(skip, chunk.length);
          chunk = chunk.subarray(k);
          skip -= k;
          if (chunk.length === 0) continue;
        }
        // narStream never reuses a chunk it yielded: its memory can move
        addChunk(batch, chunk, chunk.buffer.byteLength <= chunk.byteLength * 2 + MAGIC_LENGTH);
        bytes += chunk.byteLength;
        if (bytes >= BATCH) await post(false);
      }
      await post(true);
      if (aborted) return null;
    }
    // the last acknowledgements bring the memory back for the next job
    await waitWhile(() => acked < sent);
    return null;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return { code: e.code ?? null, message: e.message ?? String(err) };
  } finally {
    port.removeAllListeners();
    port.close();
  }
}
