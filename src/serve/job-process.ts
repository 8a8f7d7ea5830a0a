/**
 * The job's own process (`fodder job --id N`, started by the service, jobs.ts): runs the job
 * (job-run.ts) and sends its events to the service over the IPC channel execa opened
 * (job-messages.ts). It stops, marking the job interrupted, when the service asks it to (its
 * stop is the abort of execa's `getCancelSignal()`), on SIGINT or SIGTERM, and when the service
 * is gone: the channel's disconnect aborts the same signal, so a service killed with -9 leaves
 * no job process behind.
 */
import { getCancelSignal, sendMessage } from 'execa';
import type { Settings } from '../config/settings.js';
import type { JobInfo } from '../db/jobs.js';
import type { Db } from '../db/open.js';
import { currentOwner } from '../db/owner.js';
import type { JobProgress } from './job-progress.js';
import { PROGRESS_EVERY_MS, type JobMessage } from './job-messages.js';
import { runJob } from './job-run.js';

export interface JobProcessOptions {
  db: Db;
  settings: Settings;
  id: number;
  /** this process's own stop (SIGINT, SIGTERM) */
  signal: AbortSignal;
}

/** Runs job `id` in this process, telling the service; returns the job as recorded. */
export async function runJobProcess(o: JobProcessOptions): Promise<JobInfo> {
  const stop = await getCancelSignal();
  const signal = AbortSignal.any([o.signal, stop]);
  // a message the service cannot take any more (it is gone; execa throws at once then) is
  // dropped: the job is stopping, and its row says how it ended
  const send = async (m: JobMessage) => {
    if (!process.connected) return;
    try {
      await sendMessage(m);
    } catch {
      // the channel closed meanwhile
    }
  };
  let latest: JobProgress | null = null;
  let timer: NodeJS.Timeout | null = null;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (latest) void send({ type: 'progress', progress: latest });
    latest = null;
  };
  const now = (m: JobMessage) => {
    flush();
    void send(m);
  };
  const job = await runJob({
    db: o.db,
    settings: o.settings,
    id: o.id,
    owner: currentOwner(),
    signal,
    events: {
      stage: (_id, stage) => now({ type: 'stage', stage }),
      stageDone: (_id, stage, seconds) => now({ type: 'stageDone', stage, seconds }),
      crawled: (_id, summary) => now({ type: 'crawled', summary }),
      fetched: (_id, summary) => now({ type: 'fetched', summary }),
      reported: (_id, fods) => now({ type: 'reported', fods }),
      collected: (_id, result) => now({ type: 'collected', result }),
      progress: (_id, p) => {
        latest = p;
        timer ??= setTimeout(flush, PROGRESS_EVERY_MS);
      },
    },
  });
  flush();
  await send({ type: 'finished' });
  return job;
}
