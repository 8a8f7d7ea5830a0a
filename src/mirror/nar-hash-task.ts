/**
 * What the NAR hashing thread does for one NAR walked on the calling thread
 * (workers/nar-hash-worker.ts, run by nar-hash-threaded.ts): hashes the chunks that arrive on
 * the task's port, their memory moved, not copied; acknowledges each batch, so the walker never
 * runs more than a bounded number of bytes ahead; returns the hash (hex) at `end`. Closing the
 * port from the walker's side abandons the task (null).
 */
import { createHash } from 'node:crypto';
import type { MessagePort } from 'node:worker_threads';
import type { HashAlgo } from '../nix-formats/hash.js';

export interface ChunkHashTask {
  algo: HashAlgo;
  port: MessagePort;
}

/** Chunks of a NAR, in order, as views of moved memory. */
export interface ChunkBatch {
  buffers: ArrayBuffer[];
  offsets: number[];
  lengths: number[];
}

/**
 * Adds `chunk` to `batch`: its memory itself when `movable` (the chunk owns it, and no other
 * chunk of the batch shares it), else a copy (a chunk in a buffer shared with others).
 */
export function addChunk(batch: ChunkBatch, chunk: Uint8Array, movable: boolean): void {
  const ab = chunk.buffer as ArrayBuffer;
  if (movable && !batch.buffers.includes(ab)) {
    batch.buffers.push(ab);
    batch.offsets.push(chunk.byteOffset);
  } else {
    const copy = new Uint8Array(chunk.byteLength);
    copy.set(chunk);
    batch.buffers.push(copy.buffer);
    batch.offsets.push(0);
  }
  batch.lengths.push(chunk.byteLength);
}

/** On the task's port: a batch to hash, or the end of the NAR. */
export type ChunkMessage = ({ type: 'data' } & ChunkBatch) | { type: 'end' };

/** Back on the port: this many bytes were hashed. */
export interface ChunkAck {
  bytes: number;
}

export function hashChunks(task: ChunkHashTask): Promise<string | null> {
  const { port } = task;
  const hash = createHash(task.algo);
  return new Promise((resolve) => {
    let settled = false;
    const end = (hex: string | null) => {
      if (settled) return;
      settled = true;
      port.removeAllListeners();
      port.close();
      resolve(hex);
    };
    port.on('message', (m: ChunkMessage) => {
      if (m.type === 'end') {
        end(hash.digest('hex'));
        return;
      }
      let n = 0;
      for (let i = 0; i < m.buffers.length; i++) {
        hash.update(new Uint8Array(m.buffers[i], m.offsets[i], m.lengths[i]));
        n += m.lengths[i];
      }
      port.postMessage({ bytes: n } satisfies ChunkAck);
    });
    port.on('close', () => end(null));
  });
}
