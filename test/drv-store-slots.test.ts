import { join } from 'node:path';
import { Piscina } from 'piscina';
import { describe, expect, it } from 'vitest';
import { createSlotTable } from '../src/eval/slots.js';

const WORKER = join(import.meta.dirname, 'helpers', 'slot-worker.mjs');

describe('drv store slots', () => {
  it('never gives a thread the pool starts in place of a dead one the slot of a live one', async () => {
    const threads = 3;
    const pool = new Piscina({ filename: WORKER, minThreads: threads, maxThreads: threads });
    const slots = createSlotTable(threads);
    pool.on('workerDestroy', () => slots.reclaim(pool.threads.map((t) => t.threadId)));
    // one task per thread at once: each waits until all have claimed their slot
    const round = (dieOnSlot: number) => {
      const barrier = new SharedArrayBuffer(4);
      return Promise.allSettled(Array.from({ length: threads }, () => pool.run({ slotTable: slots.buffer, barrier, threads, dieOnSlot })));
    };
    try {
      const first = await round(-1);
      expect(first.map((r) => r.status === 'fulfilled' && (r.value as { slot: number }).slot).sort()).toEqual([0, 1, 2]);
      // kill the holders of the last slots one after another: a replacement's threadId is new,
      // so a slot derived from it (threadId - 1 modulo the slots) lands on a live thread's
      for (const dying of [threads - 1, threads - 2]) {
        const died = await round(dying);
        expect(died.filter((r) => r.status === 'rejected')).toHaveLength(1);
        const live = await round(-1);
        const held = live.map((r) => (r.status === 'fulfilled' ? (r.value as { threadId: number; slot: number }) : null));
        expect(held.every((h) => h !== null)).toBe(true);
        expect(new Set(held.map((h) => h!.threadId)).size).toBe(threads);
        expect(held.map((h) => h!.slot).sort()).toEqual([0, 1, 2]);
      }
    } finally {
      await pool.destroy();
    }
  }, 60_000);
});
