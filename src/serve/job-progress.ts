/**
 * A job's progress as counts (docs/api.md, `GET /api/jobs/events`): the crawl's and the fetch's
 * progress events, which the command line draws as progress lines, summed up for the dashboard.
 */
import type { JobStage } from '../db/jobs.js';
import type { Progress } from '../eval/progress.js';
import type { FetchProgress } from '../fetch/progress.js';

export interface JobProgress {
  stage: JobStage;
  /** crawl: attributes evaluated; fetch: sources tried */
  done: number;
  /** crawl: attributes queued so far (it grows as the walk goes deeper); fetch: sources to try */
  total: number;
  /** crawl: `drvs` and `fods` found; fetch: verdicts (`ok`, `dead`, `broken-hash`, `unverifiable`) and `bytes` downloaded */
  counts: Record<string, number>;
}

type Report = (p: JobProgress) => void;

/** The crawl's progress events, as counts. */
export function crawlProgressOf(report: Report): Progress {
  const p: JobProgress = { stage: 'crawl', done: 0, total: 0, counts: { drvs: 0, fods: 0 } };
  const send = () => report({ ...p, counts: { ...p.counts } });
  return {
    start: () => send(),
    resume: (_target, rows) => {
      p.done += rows;
      p.total += rows;
      send();
    },
    queued: (_shards, attrs) => {
      p.total += attrs;
      send();
    },
    shardDone: (_target, rows, added) => {
      p.done += rows.length;
      p.counts.drvs += added.drvs;
      p.counts.fods += added.fods;
      send();
    },
    targetDone: () => send(),
    finish: (s) => {
      p.counts.fods = s.fods;
      p.counts.drvs = s.drvs;
      p.done = Math.max(p.done, p.total);
      send();
    },
  };
}

/** The fetch's progress events, as counts. */
export function fetchProgressOf(report: Report): FetchProgress {
  const p: JobProgress = { stage: 'fetch', done: 0, total: 0, counts: { ok: 0, dead: 0, 'broken-hash': 0, unverifiable: 0, bytes: 0 } };
  const send = () => report({ ...p, counts: { ...p.counts } });
  return {
    start: (info) => {
      p.total = info.queued;
      send();
    },
    bytes: (delta) => {
      p.counts.bytes += delta;
      send();
    },
    expect: () => undefined,
    done: (info) => {
      p.done++;
      p.counts[info.verdict]++;
      send();
    },
    finish: () => send(),
  };
}
