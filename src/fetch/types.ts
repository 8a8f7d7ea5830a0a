import type { Fod, FodKind, HashAlgo } from '../graph/types.js';
import type { Outcome } from './outcome.js';

/** Lowercase hex digests of one file under every algorithm a hashed mirror answers to. */
export type Digests = Record<HashAlgo, string>;

/** One try of one URL, as recorded in `fetch_attempts`. */
export interface AttemptRecord {
  url: string;
  urlIndex: number;
  /** 1 for the first try of this URL in this run */
  try: number;
  finalUrl: string | null;
  outcome: Outcome;
  httpStatus: number | null;
  ftpReply: number | null;
  bytes: number;
  resumedFrom: number | null;
  durationMs: number;
  /** for hash-mismatch: the hash of what was delivered, in the declared algorithm */
  actual: { algo: HashAlgo; hex: string } | null;
  message: string | null;
}

/** What a plug-in leaves in its work dir when it succeeds. */
export type FetchedOutput =
  /** a flat file whose content has the FOD's declared flat hash; the mirror stores it under tarballs/ */
  | { type: 'file'; path: string; size: number; digests: Digests }
  /** a directory tree whose NAR hash is the FOD's declared recursive hash (stored in a binary cache) */
  | { type: 'tree'; path: string; narHash: string; narSize: number };

/** The plug-in's verdict on one FOD. */
export type FetchVerdict =
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
  download(req: DownloadRequest, ctx: Pick<FetchContext, 'recordAttempt' | 'onBytes' | 'signal'>): Promise<DownloadOk | DownloadFailed>;
}

/** What the runner hands a plug-in for one FOD. */
export interface FetchContext {
  /** a directory of its own on the mirror's filesystem; it survives a crash, so a rerun can resume */
  workDir: string;
  network: Network;
  recordAttempt(attempt: AttemptRecord): void;
  onBytes: BytesListener;
  signal: AbortSignal;
}

/** How sure a plug-in's verdict is: `exact` means it does what Nix's own fetcher does. */
export type Certainty = 'exact' | 'approximate';

/** A fetcher kind. Adding one is a module with this shape plus one line in registry.ts. */
export interface FetcherPlugin {
  /** stable name; matches the FOD kind it handles */
  readonly id: FodKind;
  readonly certainty: Certainty;
  /** whether this FOD is within the plug-in's reach; the reason is shown when it is not */
  canFetch(fod: Fod): { ok: true } | { ok: false; reason: string };
  /** produces the FOD's content in ctx.workDir, verified against its declared hash */
  fetch(fod: Fod, ctx: FetchContext): Promise<FetchVerdict>;
}
