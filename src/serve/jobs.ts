/**
 * The service's jobs: each runs the pipeline on the configured package set (the head of the
 * followed branch, `service.nixpkgs`, fetched first), a crawl (resumed
 * when one of the same key is unfinished), a fetch of its sources into the mirror, and a report
 * (recorded, so the next one says what is new). One job at a time: a job asked for while one
 * runs waits in the queue, and a request while one already waits is answered with that one.
 * Every job is a row of the database (src/db/jobs.ts), so a job whose process was killed is
 * taken up again, from the stage it reached, by the next service on the same database.
 */
import type { Settings } from '../config/settings.js';
import type { Db } from '../db/open.js';
import { currentOwner } from '../db/owner.js';
import { addJob, finishJob, jobById, jobsToResume, setJobStage, setStageSeconds, startJob, type JobInfo, type JobStage, type JobTrigger } from '../db/jobs.js';
import { ErrorCode, FodderError } from '../errors.js';
import { crawl } from '../eval/crawl.js';
import type { CrawlSummary } from '../eval/progress.js';
import { fetchRunSettings } from '../fetch/options.js';
import { collectGarbage, type GcResult } from '../mirror/gc.js';
import type { FetchSummary } from '../fetch/progress.js';
import { runFetch } from '../fetch/run.js';
import { buildReport } from '../report/build.js';
import type { Report } from '../report/types.js';
import { updatePackageSet } from './package-set.js';
import { crawlProgressOf, fetchProgressOf, type JobProgress } from './job-progress.js';

/** What a job tells the service as it goes (the command line prints it; the metrics count it). */
export interface JobEvents {
  stage?(job: number, stage: JobStage): void;
  stageDone?(job: number, stage: JobStage, seconds: number): void;
  crawled?(job: number, summary: CrawlSummary): void;
  fetched?(job: number, summary: FetchSummary): void;
  reported?(job: number, report: Report): void;
  /** `fodder gc` after the job (only with `service.keep`) */
  collected?(job: number, result: GcResult): void;
  finished?(job: JobInfo): void;
  /** the running stage's counts, as its progress events come (often: whoever shows them throttles) */
  progress?(job: number, p: JobProgress): void;
}

export interface JobRunner {
  /** queues a job (or answers the one already waiting); returns its id */
  request(trigger: JobTrigger): number;
  /** takes up the jobs a killed or stopped service left (see `jobsToResume`); returns their ids */
  resume(): number[];
  /** the job running now, or null */
  running(): number | null;
  /** stops the running job (marked interrupted) and waits for it; nothing starts afterwards */
  stop(reason: string): Promise<void>;
}

export interface JobRunnerOptions {
  db: Db;
  settings: Settings;
  events?: JobEvents;
}

export function createJobRunner(o: JobRunnerOptions): JobRunner {
  const { db, settings, events = {} } = o;
  const owner = currentOwner();
  const queue: number[] = [];
  let current: number | null = null;
  let abort: AbortController | null = null;
  let loop: Promise<void> | null = null;
  let stopped = false;

  const timed = async <T>(id: number, stage: JobStage, made: { crawl?: number }, body: () => Promise<T>): Promise<T> => {
    setJobStage(db, id, stage, made);
    events.stage?.(id, stage);
    const t0 = Date.now();
    const out = await body();
    const seconds = (Date.now() - t0) / 1000;
    setStageSeconds(db, id, stage, seconds);
    events.stageDone?.(id, stage, seconds);
    return out;
  };

  /** One job, from the stage it reached (a resumed job whose crawl finished goes on with its fetch). */
  const run = async (id: number, signal: AbortSignal): Promise<void> => {
    const before = jobById(db, id);
    startJob(db, id, owner);
    let crawlId = before?.stage && before.stage !== 'crawl' ? before.crawl : null;
    if (crawlId === null) {
      const summary = await timed(id, 'crawl', {}, async () => {
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
    if (before?.stage !== 'report') {
      const summary = await timed(id, 'fetch', { crawl: crawlId }, () =>
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
      if (signal.aborted) throw new FodderError(ErrorCode.INTERRUPTED, `fetch run ${summary.run} stopped by ${String(signal.reason)}`);
    }
    const report = await timed(id, 'report', { crawl: crawlId }, async () => buildReport(db, { save: true, crawl: crawlId }));
    events.reported?.(id, report);
    if (settings.service.keep !== null) events.collected?.(id, collectGarbage({ db, mirrorDir: settings.mirror, keep: settings.service.keep }));
  };

  const finish = (id: number, err: unknown, signal: AbortSignal) => {
    if (err === null) finishJob(db, id, 'done');
    else if (signal.aborted) finishJob(db, id, 'interrupted', { code: ErrorCode.INTERRUPTED, message: `stopped by ${String(signal.reason)}` });
    else {
      const code = err instanceof FodderError ? err.code : ErrorCode.BUG;
      finishJob(db, id, 'failed', { code, message: err instanceof Error ? err.message : JSON.stringify(err) });
    }
    const job = jobById(db, id);
    if (job) events.finished?.(job);
  };

  const drain = async () => {
    while (!stopped && queue.length > 0) {
      const id = queue.shift()!;
      current = id;
      abort = new AbortController();
      const signal = abort.signal;
      let failure: unknown = null;
      try {
        await run(id, signal);
      } catch (err) {
        failure = err ?? new Error('failed');
      }
      try {
        finish(id, failure, signal);
      } finally {
        current = null;
        abort = null;
      }
    }
  };
  const kick = () => {
    loop ??= drain().finally(() => {
      loop = null;
      if (!stopped && queue.length > 0) kick();
    });
  };

  return {
    request(trigger) {
      const waiting = queue.at(-1);
      if (waiting !== undefined) return waiting;
      const id = addJob(db, trigger, owner);
      queue.push(id);
      kick();
      return id;
    },
    resume() {
      const ids = jobsToResume(db).filter((id) => !queue.includes(id) && id !== current);
      queue.push(...ids);
      if (ids.length > 0) kick();
      return ids;
    },
    running: () => current,
    async stop(reason) {
      stopped = true;
      abort?.abort(reason);
      await loop;
    },
  };
}
