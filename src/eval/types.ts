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
  /** how many drv store directories the workers spread over (one each) */
  storeSlots: number;
  mirrors: Mirrors;
  explainErrors: boolean;
  timeoutMs: number;
  memoryMb: number;
  walker: string;
  /**
   * the crawl's scratch directory, made and removed by the coordinator: the walker's spec files
   * go there, and Nix's TMPDIR points there
   */
  scratch: string;
}

export type AttrStatus = 'drv' | 'set' | 'error' | 'skipped';
export type ErrorKind = 'catchable' | 'uncatchable' | 'timeout' | 'memory';

/** What the walker says of one attribute path. */
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
  readMs: number;
  /** largest resident size of one nix-instantiate of this shard, KiB */
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
  code: string;
  message: string;
}
