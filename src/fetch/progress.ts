import type { FodKind } from '../graph/types.js';
import type { Outcome } from './outcome.js';

/** The fate of the FODs of one kind in one run. */
export interface KindCounts {
  fods: number;
  mirrored: number;
  alreadyMirrored: number;
  dead: number;
  brokenHash: number;
  unverifiable: number;
  failedBefore: number;
}

export interface FetchSummary {
  run: number;
  crawl: number;
  mirror: string;
  /** the binary cache: `<mirror>/cache` */
  cache: string;
  kinds: FodKind[];
  /** whether the nix fallback was on */
  nixFallback: boolean;
  /** FODs of the selected kinds in the crawl */
  fods: number;
  /** newly stored by this run */
  mirrored: number;
  /** found in the mirror already: not fetched again */
  alreadyMirrored: number;
  dead: number;
  brokenHash: number;
  /** fodder could not judge them, by reason (no plug-in reproduces them, or one tried and could not): not a verdict on the source */
  unverifiable: Record<string, number>;
  /** newly stored, by the plug-in that produced them */
  mirroredBy: Record<string, number>;
  /** entries written to the binary cache (new sources, and mirrored files it lacked) */
  published: number;
  byKind: Partial<Record<FodKind, KindCounts>>;
  skipped: {
    /** failed in an earlier run (use --retry-failed) */
    failedBefore: number;
  };
  bytes: number;
  durationMs: number;
  /** every try's outcome, counted */
  outcomes: Partial<Record<Outcome, number>>;
}

/** Receives fetch events; the CLI draws them (src/cli/fetch-progress.ts), tests may count them. */
export interface FetchProgress {
  start(info: { run: number; crawl: number; queued: number; skipped: number }): void;
  bytes(delta: number): void;
  /** a download announced its size */
  expect(bytes: number): void;
  done(info: { name: string; verdict: 'ok' | 'dead' | 'broken-hash' | 'unverifiable'; message: string | null }): void;
  finish(summary: FetchSummary): void;
}
