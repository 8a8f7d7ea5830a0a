import { FetchError, type Outcome } from './outcome.js';
import { openPartFile, type PartFile } from './part-file.js';
import { createInlineHasher, type HashPool, type Hasher } from '../mirror/hashing.js';
import type { Digests } from '../mirror/types.js';
import type { BytesListener } from './types.js';

/** Files announced at most this big are hashed inline rather than by the worker threads. */
export const INLINE_HASH_MAX = 1 << 20;

/** Everything one try needs from the run (same for HTTP and FTP). */
export interface TryEnv {
  dest: string;
  hashPool: HashPool;
  maxBytes: number;
  onBytes: BytesListener;
  onExpect?: (bytes: number) => void;
  signal: AbortSignal;
}

/** The result of one try of one URL, before the content is judged. */
export interface TryResult {
  outcome: Outcome;
  message: string | null;
  httpStatus: number | null;
  ftpReply: number | null;
  finalUrl: string | null;
  /** bytes received in this try */
  bytes: number;
  resumedFrom: number | null;
  /** ok: the complete file */
  size: number;
  digests: Digests | null;
  /** a server's Retry-After, in ms */
  retryAfterMs: number | null;
}

export function tryFailure(outcome: Outcome, message: string, extra: Partial<TryResult> = {}): TryResult {
  return {
    outcome,
    message,
    httpStatus: null,
    ftpReply: null,
    finalUrl: null,
    bytes: 0,
    resumedFrom: null,
    size: 0,
    digests: null,
    retryAfterMs: null,
    ...extra,
  };
}

/**
 * The receiving end of a body: writes each chunk to the part file, feeds the hasher, counts,
 * and enforces the size cap. Local write errors (ENOSPC, EROFS...) are thrown as they are:
 * they are not the URL's fault.
 */
export interface Receiver {
  readonly part: PartFile;
  /** bytes received in this try */
  readonly received: number;
  push(chunk: Buffer): void;
  /** the digests of the complete file; closes the part file (unsynced: admission fsyncs) */
  finish(): Promise<{ size: number; digests: Digests }>;
  /** gives up: closes the file, stops hashing; the bytes stay for a later resume */
  abandon(): void;
}

export function createReceiver(env: TryEnv, resumeFrom: number, expectedTotal: number | null): Receiver {
  const part = openPartFile(env.dest, resumeFrom > 0);
  const hasher: Hasher =
    resumeFrom === 0 && expectedTotal !== null && expectedTotal <= INLINE_HASH_MAX ? createInlineHasher() : env.hashPool.trailing(env.dest);
  let received = 0;
  let done = false;
  if (expectedTotal !== null) env.onExpect?.(expectedTotal - resumeFrom);
  return {
    part,
    get received() {
      return received;
    },
    push(chunk) {
      if (part.size + chunk.length > env.maxBytes) {
        throw new FetchError('too-large', `larger than the size cap of ${env.maxBytes} bytes`, { maxBytes: env.maxBytes });
      }
      part.write(chunk);
      received += chunk.length;
      hasher.update(chunk, part.size);
      env.onBytes(chunk.length);
    },
    async finish() {
      done = true;
      const size = part.size;
      try {
        const digests = await hasher.finish(size);
        return { size, digests };
      } finally {
        part.close();
      }
    },
    abandon() {
      if (done) return;
      done = true;
      hasher.abort();
      part.close();
    },
  };
}
