/** What the mirror stores: shapes the fetch stage hands it. */
import type { HashAlgo } from '../nix-formats/hash.js';

/** Lowercase hex digests of one file under every algorithm a hashed mirror answers to. */
export type Digests = Record<HashAlgo, string>;

/** What a plug-in leaves in its work dir when it succeeds. */
export type FetchedOutput =
  /** a flat file whose content has the FOD's declared flat hash; the mirror stores it under tarballs/ */
  | { type: 'file'; path: string; size: number; digests: Digests }
  /** a directory tree whose NAR hash is the FOD's declared recursive hash (stored in a binary cache) */
  | { type: 'tree'; path: string; narHash: string; narSize: number };
