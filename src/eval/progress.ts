import type { AttrRow, Target } from '../db/crawl-store.js';

/** What a crawl did, as `fodder crawl --json` prints it. */
export interface CrawlSummary {
  crawl: number;
  resumed: boolean;
  systems: string[];
  variants: string[];
  attrs: { total: number; drv: number; set: number; error: number; skipped: number };
  drvs: number;
  fods: number;
  durationMs: number;
  /** the version of the Nix that evaluated (`builtins.nixVersion`, e.g. "2.26.3") */
  nix: string;
}

/** Receives crawl events; the CLI draws them (src/cli/crawl-progress.ts), tests may count them. */
export interface Progress {
  start(info: { crawl: number; resumed: boolean; targets: number }): void;
  resume(target: Target, rows: number): void;
  queued(shards: number, attrs: number): void;
  /** `added`: derivations and FODs new to the database */
  shardDone(target: Target, rows: AttrRow[], added: { drvs: number; fods: number }, shards: number): void;
  targetDone(target: Target): void;
  finish(summary: CrawlSummary): void;
}
