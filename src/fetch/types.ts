import type { Fod, FodKind } from '../graph/types.js';
import type { HashAlgo } from '../nix-formats/hash.js';
import type { Digests, FetchedOutput } from '../mirror/types.js';
import type { Outcome } from './outcome.js';
import type { AttemptRow } from '../db/fetch-store.js';

/** One try of one URL, as recorded in `fetch_attempts`. */
export interface AttemptRecord extends AttemptRow {
  outcome: Outcome;
}

/** The record of the one try of a source that has one URL and no transfer of fodder's own (a git clone, a Nix build). */
export function singleTry(url: string, outcome: Outcome, t0: number, actual: AttemptRecord['actual'], message: string | null): AttemptRecord {
  return {
    url,
    urlIndex: 0,
    try: 1,
    finalUrl: null,
    outcome,
    httpStatus: null,
    ftpReply: null,
    bytes: 0,
    resumedFrom: null,
    durationMs: Date.now() - t0,
    actual,
    message,
  };
}

/** A FOD's whole .drv environment (the `fods.env_json` column). */
export type FodEnv = Readonly<Record<string, string>>;

/**
 * Why fodder could not check a FOD itself: never a verdict on the source. Stable strings, the
 * report groups by them.
 * - `custom-postFetch`: a postFetch beyond the fetcher's own (fetchzip, fetchgit)
 * - `not-exact`: an option fodder does not reproduce (recursive hash of a plain file, leaveDotGit, LFS, ...)
 * - `unpack-refused`: the archive has entries fodder refuses to write (path traversal, devices, bomb)
 * - `unpack-unsupported`: a format or feature fodder does not unpack
 * - `unpack-failed`: the unpacking tool failed on the download
 * - `no-fetcher`: no native plug-in for the kind and the nix fallback is off
 * - `nix-failed`: the nix fallback could not realise the derivation (not a hash mismatch)
 * - `drv-missing`: the nix fallback found no .drv file to realise
 * - `no-url`: the FOD names no URL to fetch
 */
export type UnverifiableReason =
  'custom-postFetch' | 'not-exact' | 'unpack-refused' | 'unpack-unsupported' | 'unpack-failed' | 'no-fetcher' | 'nix-failed' | 'drv-missing' | 'no-url';

export interface UnverifiableVerdict {
  ok: false;
  verdict: 'unverifiable';
  reason: UnverifiableReason;
  message: string;
  mismatch: null;
}

export function unverifiable(reason: UnverifiableReason, message: string): UnverifiableVerdict {
  return { ok: false, verdict: 'unverifiable', reason, message, mismatch: null };
}

/** The plug-in's verdict on one FOD. */
export type FetchVerdict =
  | UnverifiableVerdict
  | { ok: true; output: FetchedOutput; url: string; urlIndex: number }
  | {
      ok: false;
      /** dead: every URL failed; broken-hash: some URL delivered other content and none the right one */
      verdict: 'dead' | 'broken-hash';
      message: string;
      /** broken-hash: the first URL that delivered wrong content, and what it delivered */
      mismatch: { url: string; urlIndex: number; actual: { algo: HashAlgo; hex: string } } | null;
    };

/** Bytes moving, for progress: called as they arrive, `delta` may be negative when a try restarts. */
export type BytesListener = (delta: number) => void;

/** One downloaded file, already hashed (all of md5, sha1, sha256, sha512). */
export interface DownloadOk {
  ok: true;
  path: string;
  size: number;
  digests: Digests;
  finalUrl: string;
}

export interface DownloadFailed {
  ok: false;
  outcome: Outcome;
  message: string;
  /** set for hash-mismatch */
  actual: { algo: HashAlgo; hex: string } | null;
}

export interface DownloadRequest {
  url: string;
  urlIndex: number;
  /** the file to write; a partial file left there by an earlier try or run is resumed when possible */
  dest: string;
  /**
   * Judges the complete download. Returning a hash means "wrong content" (hash-mismatch, not
   * retried unless the file was resumed from an earlier try). Omit it to accept any content.
   */
  check?: (digests: Digests) => { algo: HashAlgo; hex: string } | null;
}

/**
 * The shared downloader every plug-in uses: it owns the scheme policy, the global and per-host
 * limits, timeouts, retries with backoff, resumption, the size cap and attempt recording.
 */
export interface Network {
  download(req: DownloadRequest, ctx: Pick<FetchContext, 'recordAttempt' | 'onBytes' | 'onExpect' | 'signal'>): Promise<DownloadOk | DownloadFailed>;
}

/** What the runner hands a plug-in for one FOD. */
export interface FetchContext {
  /** a directory of its own on the mirror's filesystem; it survives a crash, so a rerun can resume */
  workDir: string;
  network: Network;
  recordAttempt(attempt: AttemptRecord): void;
  onBytes: BytesListener;
  /** bytes a try is about to receive, when the server announced them (for the ETA) */
  onExpect?: (bytes: number) => void;
  signal: AbortSignal;
  /** the FOD's whole .drv environment */
  env: FodEnv;
}

/** How sure a plug-in's verdict is: `exact` means it does what Nix's own fetcher does. */
export type Certainty = 'exact' | 'approximate';

/** A fetcher kind. Adding one is a module with this shape plus one line in registry.ts. */
export interface FetcherPlugin {
  /** stable name: the FOD kind it handles, or `nix` for the fallback that realises any derivation */
  readonly id: FodKind | 'nix';
  readonly certainty: Certainty;
  /** whether this plug-in reproduces this FOD exactly; the reason is recorded when it does not */
  canFetch(fod: Fod, env: FodEnv): { ok: true } | { ok: false; reason: string; code: UnverifiableReason };
  /**
   * Produces the FOD's content in ctx.workDir, verified against its declared hash: a flat file
   * (stored in tarballs/) or a directory tree (for the binary cache). Failures are verdicts:
   * `dead`, `broken-hash`, or `unverifiable` when fodder cannot judge.
   */
  fetch(fod: Fod, ctx: FetchContext): Promise<FetchVerdict>;
}
