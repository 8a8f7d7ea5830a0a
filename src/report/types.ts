import type { Fod } from '../graph/types.js';
import type { HashAlgo } from '../nix-formats/hash.js';
import type { AttrNeeds } from './dependents.js';

/** A hash in every spelling a reader may search for. */
export interface HashJson {
  algo: HashAlgo;
  hex: string;
  sri: string;
}

export interface UrlOutcome {
  url: string;
  /** the outcome of this URL's last try (src/fetch/outcome.ts) */
  outcome: string;
  httpStatus: number | null;
  message: string | null;
}

interface EntryBase {
  fod: Fod;
  attrs: AttrNeeds;
  /** when the current streak began: the first fetch run that found the source in this state */
  since: string;
  /** the latest fetch run that tried it */
  lastTried: string;
  /** not listed by the previous report */
  new: boolean;
}

export interface BrokenHashEntry extends EntryBase {
  url: string;
  expected: HashJson;
  actual: HashJson;
  /** every URL's outcome in the latest try */
  urls: UrlOutcome[];
}

export interface DeadEntry extends EntryBase {
  urls: UrlOutcome[];
}

export interface RottingEntry extends EntryBase {
  /** the URL the mirrored copy came from */
  url: string;
  urlIndex: number;
  /** the URLs before it, all failing */
  failing: UrlOutcome[];
}

/** A source fodder could not judge: never a verdict on it (src/fetch/types.ts UnverifiableReason). */
export interface UnverifiableEntry extends EntryBase {
  /** why: no-fetcher, custom-postFetch, not-exact, nix-failed, ... */
  reason: string;
  message: string;
  /** the plug-in that tried, or null when none could */
  plugin: string | null;
}

export interface EvalErrorEntry {
  attr: string;
  system: string;
  variant: string;
  message: string;
  kind: string | null;
  new: boolean;
}

/** The `fodder report --format json` contract. */
export interface Report {
  crawl: { id: number; nixpkgs: string; status: string; startedAt: string; finishedAt: string | null };
  generatedAt: string;
  previousReport: { id: number; createdAt: string } | null;
  summary: {
    fods: number;
    mirrored: number;
    brokenHash: number;
    dead: number;
    rotting: number;
    unfetched: number;
    /** not mirrored, and fodder could not judge them (listed in `unverifiable`) */
    unverifiable: number;
    evalErrors: number;
  };
  brokenHashes: BrokenHashEntry[];
  dead: DeadEntry[];
  rotting: RottingEntry[];
  unverifiable: UnverifiableEntry[];
  evalErrors: EvalErrorEntry[];
}
