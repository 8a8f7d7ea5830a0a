/**
 * The jobs' live feed (`GET /api/jobs/events`, docs/api.md): the job runner's events as
 * server-sent events. `job` says a job started, changed stage or finished (with the job as
 * `GET /api/jobs/<id>` answers it); `progress` carries its counts (`JobProgress`), at most a few
 * times a second however fast the crawl and the fetch go.
 */
import { jobById, listJobs, type JobInfo, type JobStage } from '../db/jobs.js';
import type { Db } from '../db/open.js';
import type { JobProgress } from './job-progress.js';

export type JobChange = 'start' | 'stage' | 'finish';

export type FeedMessage = { event: 'job'; data: { change: JobChange; job: JobInfo } } | { event: 'progress'; data: JobProgress & { job: number } };

export interface JobFeed {
  stage(job: number, stage: JobStage): void;
  progress(job: number, p: JobProgress): void;
  finished(job: JobInfo): void;
  /** the latest job and its latest progress (when it runs), for a page that connects now */
  snapshot(): { job: JobInfo | null; progress: (JobProgress & { job: number }) | null };
  /** calls `listener` with every message from now on; returns the function that stops it */
  subscribe(listener: (m: FeedMessage) => void): () => void;
}

/** Progress is sent at most once per this many milliseconds (the latest counts win). */
const PROGRESS_EVERY_MS = 200;

export function createJobFeed(db: Db): JobFeed {
  const listeners = new Set<(m: FeedMessage) => void>();
  const started = new Set<number>();
  let latest: (JobProgress & { job: number }) | null = null;
  let pending = false;
  let timer: NodeJS.Timeout | null = null;

  const send = (m: FeedMessage) => {
    for (const l of listeners) l(m);
  };
  const flush = () => {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    if (pending && latest) send({ event: 'progress', data: latest });
    pending = false;
  };

  return {
    stage(id, _stage) {
      flush();
      const change: JobChange = started.has(id) ? 'stage' : 'start';
      started.add(id);
      const job = jobById(db, id);
      if (job) send({ event: 'job', data: { change, job } });
    },
    progress(id, p) {
      latest = { ...p, job: id };
      pending = true;
      timer ??= setTimeout(flush, PROGRESS_EVERY_MS);
    },
    finished(job) {
      flush();
      started.delete(job.id);
      latest = null;
      send({ event: 'job', data: { change: 'finish', job } });
    },
    snapshot() {
      const job = listJobs(db, 1)[0] ?? null;
      return { job, progress: job?.status === 'running' && latest?.job === job.id ? latest : null };
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
  };
}
