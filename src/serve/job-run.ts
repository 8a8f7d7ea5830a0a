/**
 * One job's work (docs/api.md): the head of the followed branch (`service.nixpkgs`) fetched
 * first, a crawl (resumed when one of the same key is unfinished), a fetch of its sources into
 * the mirror, a report (recorded, so the next one says what is new), `fodder gc` with
 * `service.keep`, and the job's verdict. It runs in the job's own process (`fodder job`,
 * job-process.ts), which writes the job's row from its start to its verdict; the service's
 * event loop only serves requests meanwhile.
 */
import type { Settings } from '../config/settings.js';
import { finishedCrawlIds } from '../db/crawls.js';
import { seenFodDrvPaths } from '../db/queries.js';
import { finishJob, jobById, setJobStage, setStageSeconds, claimJob, type JobInfo, type JobStage } from '../db/jobs.js';
import type { Db } from '../db/open.js';
import type { Owner } from '../db/owner.js';
import { ErrorCode, FodderError } from '../errors.js';
import { crawl } from '../eval/crawl.js';
import type { CrawlSummary } from '../eval/progress.js';
import { fetchRunSettings } from '../fetch/options.js';
import type { FetchSummary } from '../fetch/progress.js';
import { runFetch } from '../fetch/run.js';
import { collectGarbage, type GcResult } from '../mirror/gc.js';
import { FOD_STATUSES, fodStatuses, type FodStatus } from '../query/listings.js';
import { buildReport } from '../report/build.js';
import { crawlProgressOf, fetchProgressOf, type JobProgress } from './job-progress.js';
import { updatePackageSet } from './package-set.js';

/** What a job tells the service as it goes (the command line prints it; the metrics count it). */
export interface JobEvents {
  stage?(job: number, stage: JobStage): void;
  stageDone?(job: number, stage: JobStage, seconds: number): void;
  crawled?(job: number, summary: CrawlSummary): void;
  fetched?(job: number, summary: FetchSummary): void;
  /** the report is recorded; `fods`: the FODs of the latest finished crawl by status now (for /metrics) */
  reported?(job: number, fods: Record<FodStatus, number>): void;
  /** `fodder gc` after the job (only with `service.keep`) */
  collected?(job: number, result: GcResult): void;
  finished?(job: JobInfo): void;
  /** the running stage's counts, as its progress events come (often: whoever passes them on throttles) */
  progress?(job: number, p: JobProgress): void;
}

/** The FODs of the latest finished crawl by status (all zero before there is one). */
export function fodCounts(db: Db): Record<FodStatus, number> {
  const counts = Object.fromEntries(FOD_STATUSES.map((s) => [s, 0])) as Record<FodStatus, number>;
  const latest = finishedCrawlIds(db).at(-1);
  if (latest === undefined) return counts;
  const statusOf = fodStatuses(db);
  for (const drv of seenFodDrvPaths(db, latest)) counts[statusOf(drv)]++;
  return counts;
}

export interface RunJobOptions {
  db: Db;
  settings: Settings;
  id: number;
  /** the process running it, recorded in the job's row */
  owner: Owner;
  /** aborted: the job stops and is marked interrupted, `stopped by <reason>` */
  signal: AbortSignal;
  events?: JobEvents;
}

/**
 * Runs job `id` from the stage it reached (a resumed job whose crawl finished goes on with its
 * fetch) and records its verdict: done, failed (with the error's code) or interrupted. Returns
 * the job as recorded. A job that has ended, or that another live process runs, is refused
 * (JOB_TAKEN) and its row left alone.
 */
export async function runJob(o: RunJobOptions): Promise<JobInfo> {
  const { db, id, signal, events = {} } = o;
  if (!jobById(db, id)) throw new FodderError(ErrorCode.JOB_UNKNOWN, `job ${id} is not in the database`, { job: id });
  // its row is left alone when another live process runs it (see claimJob)
  if (!claimJob(db, id, o.owner)) throw new FodderError(ErrorCode.JOB_TAKEN, `job ${id} has ended, or another live process runs it`, { job: id });
  let failure: unknown = null;
  try {
    await stages(o, events);
  } catch (err) {
    failure = err ?? new Error('failed');
  }
  if (failure === null) finishJob(db, id, 'done');
  else if (signal.aborted) finishJob(db, id, 'interrupted', { code: ErrorCode.INTERRUPTED, message: `stopped by ${stopReason(signal)}` });
  else {
    const code = failure instanceof FodderError ? failure.code : ErrorCode.BUG;
    finishJob(db, id, 'failed', { code, message: failure instanceof Error ? failure.message : JSON.stringify(failure) });
  }
  const job = jobById(db, id);
  if (!job) throw new FodderError(ErrorCode.JOB_UNKNOWN, `job ${id} is not in the database`, { job: id });
  events.finished?.(job);
  return job;
}

/** A signal's reason as the job's message says it: `SIGTERM`, or what an Error says. */
function stopReason(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  return r instanceof Error ? r.message : String(r);
}

async function stages(o: RunJobOptions, events: JobEvents): Promise<void> {
  const { db, settings, id, signal } = o;
  const timed = async <T>(stage: JobStage, made: { crawl?: number }, body: () => Promise<T>): Promise<T> => {
    setJobStage(db, id, stage, made);
    events.stage?.(id, stage);
    const t0 = Date.now();
    const out = await body();
    const seconds = (Date.now() - t0) / 1000;
    setStageSeconds(db, id, stage, seconds);
    events.stageDone?.(id, stage, seconds);
    return out;
  };

  const before = jobById(db, id);
  if (!before) throw new FodderError(ErrorCode.JOB_UNKNOWN, `job ${id} is not in the database`, { job: id });
  if (signal.aborted) throw new FodderError(ErrorCode.INTERRUPTED, `stopped by ${stopReason(signal)}`);
  let crawlId = before.stage && before.stage !== 'crawl' ? before.crawl : null;
  if (crawlId === null) {
    const summary = await timed('crawl', {}, async () => {
      // a followed branch: its head now, checked out in the service's clone, is what is crawled
      const git = settings.service.git;
      const at = git === null ? null : await updatePackageSet(git, signal);
      return crawl({
        config: at === null ? settings.crawl : { ...settings.crawl, nixpkgs: at.path, revision: at.commit },
        signal,
        progress: crawlProgressOf((p) => events.progress?.(id, p)),
      });
    });
    crawlId = summary.crawl;
    setJobStage(db, id, 'crawl', { crawl: crawlId });
    events.crawled?.(id, summary);
  }
  const fetchRun = fetchRunSettings(settings.fetch);
  if (before.stage !== 'report') {
    const summary = await timed('fetch', { crawl: crawlId }, () =>
      runFetch({
        db,
        crawl: crawlId,
        mirrorDir: settings.mirror,
        kinds: fetchRun.kinds,
        retryFailed: false,
        network: fetchRun.network,
        cache: fetchRun.cache,
        nix: fetchRun.nix,
        signal,
        progress: fetchProgressOf((p) => events.progress?.(id, p)),
      }),
    );
    setJobStage(db, id, 'fetch', { fetchRun: summary.run });
    events.fetched?.(id, summary);
    if (signal.aborted) throw new FodderError(ErrorCode.INTERRUPTED, `fetch run ${summary.run} stopped by ${stopReason(signal)}`);
  }
  await timed('report', { crawl: crawlId }, async () => buildReport(db, { save: true, crawl: crawlId }));
  events.reported?.(id, fodCounts(db));
  if (settings.service.keep !== null) events.collected?.(id, collectGarbage({ db, mirrorDir: settings.mirror, keep: settings.service.keep }));
}
