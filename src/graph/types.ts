/** Shapes produced by reading .drv files. These are the project's contract between stages. */
import type { HashAlgo, HashMode } from '../nix-formats/hash.js';

export type FodKind =
  | 'url' // flat download, no custom postFetch
  | 'archive' // fetchzip / fetchFromGitHub archive: download, unpack, NAR hash
  | 'git'
  | 'hg'
  | 'svn'
  | 'patch' // fetchpatch: download then normalise
  | 'vendor' // no URL at all: only running the builder reproduces it
  | 'manual' // requireFile
  | 'other';

export const FOD_KINDS: readonly FodKind[] = ['url', 'archive', 'git', 'hg', 'svn', 'patch', 'vendor', 'manual', 'other'];

/** Whether a user-given name is one of the FOD kinds. */
export function isFodKind(name: string): name is FodKind {
  return (FOD_KINDS as readonly string[]).includes(name);
}

export interface FodHash {
  algo: HashAlgo;
  mode: HashMode;
  /** lowercase base16, as in the .drv */
  hex: string;
  /** `<algo>-<base64>` */
  sri: string;
}

export interface GitSource {
  url: string;
  rev: string;
  submodules: boolean;
  deepClone: boolean;
  leaveDotGit: boolean;
  lfs: boolean;
  sparseCheckout: string[];
}

/** One fixed-output derivation, the `Fod` JSON shape of `fodder sources`. */
export interface Fod {
  drvPath: string;
  outPath: string;
  name: string;
  kind: FodKind;
  hash: FodHash;
  /** URLs as written in the derivation (may hold `mirror://`) */
  urls: string[];
  /** URLs with `mirror://` expanded from the package set's mirrors.nix, in order */
  resolvedUrls: string[];
  git: GitSource | null;
  /** true when a postFetch other than the fetcher's own normalisation runs */
  postFetch: boolean;
}

/** What the crawl keeps of every derivation in a closure. */
export interface DrvNode {
  drvPath: string;
  name: string;
  system: string;
  outputs: Record<string, string>;
  inputDrvs: string[];
  /** present when the derivation is fixed-output */
  fod: Fod | null;
  /** a FOD's whole environment (fetchers need more than the Fod shape); null otherwise */
  fodEnv: Record<string, string> | null;
  /** the .drv file's text, exactly as Nix wrote it */
  text: string;
  /** its input sources: store paths that are not derivations (builder scripts, patches, ...) */
  inputSrcs: string[];
}

/** An input source as the crawl keeps it: with the .drv texts, what `nix-store --import` needs to make a closure valid. */
export interface StoreSource {
  path: string;
  /** the NAR of its contents */
  nar: Uint8Array;
  /** the store paths it refers to (other sources) */
  references: string[];
}
