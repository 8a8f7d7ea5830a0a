/**
 * Drv store slots, assigned by the coordinator: each live worker thread writes into a store
 * directory of its own (slot 0 is the configured one, see src/graph/store-slots.ts), and no two
 * live threads ever hold one slot, so no thread prunes a store another one's Nix is writing.
 *
 * The coordinator makes the table (one Int32 per slot in a SharedArrayBuffer: 0 when free, else
 * the holder's threadId + 1) and hands it with every task; a thread claims a free slot with an
 * atomic compare-and-exchange on its first task and keeps it while it lives. When the pool
 * ends a thread (it died, and a new one takes its place), the coordinator frees its slot before
 * the replacement starts (by the ids of the threads still alive: a thread that has exited no longer
 * knows its own). A slot derived from `threadId` could not do this: a replacement's id
 * is new and could name a live thread's slot.
 */
import { threadId } from 'node:worker_threads';
import { ErrorCode, FodderError } from '../errors.js';

export interface SlotTable {
  /** handed to the threads with each task */
  readonly buffer: SharedArrayBuffer;
  /** frees every slot whose holder is not among `live` (the pool's threads' ids) */
  reclaim(live: Iterable<number>): void;
}

export function createSlotTable(slots: number): SlotTable {
  const buffer = new SharedArrayBuffer(4 * Math.max(1, slots));
  const table = new Int32Array(buffer);
  return {
    buffer,
    reclaim(live) {
      const held = new Set([...live].map((id) => id + 1));
      for (let i = 0; i < table.length; i++) {
        const holder = Atomics.load(table, i);
        if (holder !== 0 && !held.has(holder)) Atomics.compareExchange(table, i, holder, 0);
      }
    },
  };
}

/** This thread's slot in the coordinator's table: the one it holds, or a free one it claims now. */
export function claimSlot(buffer: SharedArrayBuffer): number {
  // each task brings its own view of the table (a SharedArrayBuffer is cloned, its memory shared)
  const table = new Int32Array(buffer);
  const me = threadId + 1;
  const held = table.indexOf(me);
  if (held >= 0) return held;
  for (let i = 0; i < table.length; i++) {
    if (Atomics.compareExchange(table, i, 0, me) === 0) return i;
  }
  throw new FodderError(ErrorCode.WORKER_FAILED, `no free drv store slot for thread ${threadId}: all ${table.length} are held`, {});
}
