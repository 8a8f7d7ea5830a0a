/**
 * Thread entry point of the parallel NAR hash (see nar-hash-threaded.ts): serialises the NAR
 * node of each unit (a subtree) it is given, in order, and sends the bytes back in batches of
 * about a megabyte, moving the chunks' memory instead of copying it. It runs ahead of the
 * consumer by at most IN_FLIGHT bytes per job. Kept small: memory a thread has used stays in
 * its malloc arena after it ends, and a larger process forks its child processes (tar, git, Nix)
 * more slowly (40 spawns: 142 ms fresh, 197-214 ms after hashing a 256 MiB tree with 32 MiB in
 * flight, 174 ms with 8 MiB).
 */
import { parentPort } from 'node:worker_threads';
import { NAR_TOKENS, narStreamWith } from '../nix-formats/nar.js';

const BATCH = 1 << 20;
const IN_FLIGHT = 8 << 20;
/** `narStream` starts with the archive's magic string; a unit is only the node after it. */
const MAGIC_LENGTH = NAR_TOKENS.magic.length;

interface JobState { sent: number; acked: number; wake: (() => void) | null; aborted: boolean }
const jobs = new Map<number, JobState>();

type Message =
  | { type: 'run'; job: number; units: { index: number; path: Uint8Array }[] }
  | { type: 'ack'; job: number; bytes: number; buffers: ArrayBuffer[] }
  | { type: 'abort'; job: number };

const port = parentPort!;

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

port.on('message', (m: Message) => {
  if (m.type === 'run') { void run(m.job, m.units); return; }
  const state = jobs.get(m.job);
  if (m.type === 'ack') giveBack(m.buffers);
  if (!state) return;
  if (m.type === 'ack') state.acked += m.bytes;
  else state.aborted = true;
  const wake = state.wake;
  state.wake = null;
  wake?.();
});

async function run(job: number, units: { index: number; path: Uint8Array }[]): Promise<void> {
  const state: JobState = { sent: 0, acked: 0, wake: null, aborted: false };
  jobs.set(job, state);
  try {
    for (const unit of units) {
      let skip = MAGIC_LENGTH;
      let buffers: ArrayBuffer[] = [];
      let offsets: number[] = [];
      let lengths: number[] = [];
      let bytes = 0;
      const post = async (end: boolean) => {
        port.postMessage({ type: 'data', job, unit: unit.index, buffers, offsets, lengths, end }, buffers);
        state.sent += bytes;
        buffers = []; offsets = []; lengths = []; bytes = 0;
        while (state.sent - state.acked > IN_FLIGHT && !state.aborted) await new Promise<void>((r) => { state.wake = r; });
      };
      for await (const c of narStreamWith(Buffer.from(unit.path.buffer, unit.path.byteOffset, unit.path.byteLength), alloc)) {
        if (state.aborted) return;
        let chunk: Buffer = c;
        if (skip > 0) {
          const k = Math.min(skip, chunk.length);
          chunk = chunk.subarray(k);
          skip -= k;
          if (chunk.length === 0) continue;
        }
        const ab = chunk.buffer as ArrayBuffer;
        if (ab.byteLength <= chunk.byteLength * 2 + MAGIC_LENGTH && !buffers.includes(ab)) {
          // narStream never reuses a chunk it yielded: its memory can move
          buffers.push(ab); offsets.push(chunk.byteOffset); lengths.push(chunk.byteLength);
        } else {
          const copy = new Uint8Array(chunk.byteLength);
          copy.set(chunk);
          buffers.push(copy.buffer); offsets.push(0); lengths.push(chunk.byteLength);
        }
        bytes += chunk.byteLength;
        if (bytes >= BATCH) await post(false);
      }
      await post(true);
      if (state.aborted) return;
    }
  } catch (err) {
    const e = err as { code?: string; message?: string };
    port.postMessage({ type: 'error', job, code: e.code ?? null, message: e.message ?? String(err) });
  } finally {
    jobs.delete(job);
  }
}
