import type { DrvNode, StoreSource } from '../graph/types.js';
import type { Mirrors } from '../graph/fod.js';

/** One unit of work for a worker: some attribute paths of one system and config variant. */
export interface ShardTask {
  nixpkgs: string;
  system: string;
  variant: string;
  config: Record<string, unknown>;
  /** a Nix expression merged over `config` (for values JSON cannot express, like functions) */
  configNix: string | null;
  overlays: string[];
  paths: string[][];
  exhaustive: boolean;
  /** drv store directory (a Nix binary-cache store, see store-slots.ts) */
  store: string;
  /**
   * a worker whose drv store is scratch empties it after a shard once it has read this many
   * .drv files since it last did; null: the store is kept (--store)
   */
  pruneStoreAfter: number | null;
  /** the coordinator's table of drv store slots (src/eval/slots.ts): one directory per live worker */
  slotTable: SharedArrayBuffer;
  mirrors: Mirrors;
  explainErrors: boolean;
  /** the longest one attribute may take */
  timeoutMs: number;
  /** the resident memory past which an evaluator is killed */
  memoryMb: number;
  /** nix/evaluator.nix */
  evaluator: string;
  /** how many evaluators (one per target) a worker thread keeps running at most */
  sessions: number;
  /**
   * the crawl's scratch directory, made and removed by the coordinator: the evaluators' spec files
   * go there, and Nix's TMPDIR points there
   */
  scratch: string;
}

export type AttrStatus = 'drv' | 'set' | 'error' | 'skipped';
/**
 * catchable: caught by tryEval; uncatchable: an error tryEval cannot catch, or a crash of Nix;
 * timeout / memory: past a cap on its own; internal: fodder failed on it (reading what Nix wrote)
 */
export type ErrorKind = 'catchable' | 'uncatchable' | 'timeout' | 'memory' | 'internal';

/** What the evaluator says of one attribute path. */
export interface AttrResult {
  path: string[];
  status: AttrStatus;
  drvPath?: string;
  /** set: carries recurseForDerivations */
  recurse?: boolean;
  /** set: attribute names (when recursed or exhaustive) */
  names?: string[] | null;
  /** skipped: the value's type */
  type?: string;
  errorKind?: ErrorKind;
  error?: string;
}

export interface ShardStats {
  nixRuns: number;
  restarts: number;
  splits: number;
  evalMs: number;
  /** starting evaluators (importing the package set) */
  loadMs: number;
  readMs: number;
  /** largest resident size of an evaluator of this shard, KiB */
  peakNixRssKb: number;
}

export interface ShardResult {
  ok: true;
  attrs: AttrResult[];
  /** derivations this thread reads for the first time */
  drvs: DrvNode[];
  /** input sources this thread reads for the first time */
  sources: StoreSource[];
  /**
   * The closure of the shard's derivation attributes is `drvs` plus `earlierDrvs` (derivations
   * this thread read for earlier shards); `closureFods`: every FOD in it
   */
  earlierDrvs: string[];
  closureFods: string[];
  stats: ShardStats;
}

/** A shard that could not even load the package set. */
export interface ShardFailure {
  ok: false;
  /** an ErrorCode, or the errno of a failed system call (which the coordinator turns into IO_ERROR) */
  code: string;
  message: string;
}
