/**
 * What a job's process (`fodder job`, job-process.ts) tells the service over its IPC channel:
 * its JobEvents, one message each (progress at most every PROGRESS_EVERY_MS). The job is the
 * one the service started the process for; `finished` says its verdict is in its row.
 */
import type { JobStage } from '../db/jobs.js';
import type { Db } from '../db/open.js';
import { jobById } from '../db/jobs.js';
import type { CrawlSummary } from '../eval/progress.js';
import type { FetchSummary } from '../fetch/progress.js';
import type { GcResult } from '../mirror/gc.js';
import type { FodStatus } from '../query/listings.js';
import type { JobProgress } from './job-progress.js';
import type { JobEvents } from './job-run.js';

export type JobMessage =
  | { type: 'stage'; stage: JobStage }
  | { type: 'stageDone'; stage: JobStage; seconds: number }
  | { type: 'crawled'; summary: CrawlSummary }
  | { type: 'fetched'; summary: FetchSummary }
  | { type: 'reported'; fods: Record<FodStatus, number> }
  | { type: 'collected'; result: GcResult }
  | { type: 'progress'; progress: JobProgress }
  | { type: 'finished' };

/** The job's progress goes to the service at most once per this many milliseconds (the latest counts win). */
export const PROGRESS_EVERY_MS = 100;

type Deliver<T extends JobMessage['type']> = (events: JobEvents, id: number, m: Extract<JobMessage, { type: T }>) => void;

/** Each message to its event (`finished` is told by the caller, from the database). */
const DELIVER: { [T in JobMessage['type']]: Deliver<T> } = {
  stage: (e, id, m) => e.stage?.(id, m.stage),
  stageDone: (e, id, m) => e.stageDone?.(id, m.stage, m.seconds),
  crawled: (e, id, m) => e.crawled?.(id, m.summary),
  fetched: (e, id, m) => e.fetched?.(id, m.summary),
  reported: (e, id, m) => e.reported?.(id, m.fods),
  collected: (e, id, m) => e.collected?.(id, m.result),
  progress: (e, id, m) => e.progress?.(id, m.progress),
  finished: () => undefined,
};

/** Whether `m` is a message of the job's process (anything else on the channel is ignored). */
function isJobMessage(m: unknown): m is JobMessage {
  return typeof m === 'object' && m !== null && Object.hasOwn(DELIVER, String((m as { type?: unknown }).type));
}

/**
 * Passes a message of job `id`'s process on to `events`; returns whether it was `finished`
 * (the verdict read back from the database, as the job's process wrote it).
 */
export function deliverJobMessage(db: Db, id: number, m: unknown, events: JobEvents): boolean {
  if (!isJobMessage(m)) return false;
  (DELIVER[m.type] as Deliver<JobMessage['type']>)(events, id, m);
  if (m.type !== 'finished') return false;
  const job = jobById(db, id);
  if (job) events.finished?.(job);
  return true;
}
