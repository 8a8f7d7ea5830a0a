// A piscina thread for test/drv-store-slots.test.ts: claims its drv store slot as a crawl worker
// does (dist/src/eval/slots.js), waits until every thread of the round has one, then reports it,
// or dies when it holds the slot the round names.
import { threadId } from 'node:worker_threads';
import { claimSlot } from '../../dist/src/eval/slots.js';

export default function slotOf({ slotTable, barrier, threads, dieOnSlot }) {
  const slot = claimSlot(slotTable);
  const b = new Int32Array(barrier);
  Atomics.add(b, 0, 1);
  Atomics.notify(b, 0);
  for (let seen = Atomics.load(b, 0); seen < threads; seen = Atomics.load(b, 0)) Atomics.wait(b, 0, seen, 10_000);
  if (slot === dieOnSlot) process.exit(1);
  return { threadId, slot };
}
