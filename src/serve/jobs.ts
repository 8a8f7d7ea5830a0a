/**
 * The service's jobs: each runs the pipeline on the configured package set (job-run.ts) in a
 * process of its own (`fodder job`, job-process.ts), so that the job's synchronous database
 * work never holds the service's event loop. One job at a time: a job asked for while one runs
 * waits in the queue, and a request while one already waits is answered with that one.
 *
 * Every job is a row of the database (src/db/jobs.ts), with one writer at a time: the service
 * adds it (`queued`, owned by the service), the job's process takes it over when it starts (its
 * own pid, boot id and start time) and writes its stages and its verdict; only a job process that
 * ended without a verdict (it crashed, was killed, or could not start) has its job ended by the
 * service: `failed`, with the process's error code or BUG, or `interrupted` when the service was
 * stopping it. A job whose service was killed is taken up, from the stage it reached, by the
 * next service on the same database: its process sees the IPC channel close and stops, marking
 * it interrupted (a job process still stopping when that service starts is waited for).
 */
import type { Settings } from '../config/settings.js';
import { addJob, endUnfinishedJob, jobById, jobsRunningElsewhere, jobsToResume, type JobTrigger } from '../db/jobs.js';
import type { Db } from '../db/open.js';
import { currentOwner } from '../db/owner.js';
import { ErrorCode } from '../errors.js';
import { startProcess, type ProcessExit } from '../process.js';
import { deliverJobMessage } from './job-messages.js';
import type { JobEvents } from './job-run.js';

export type { JobEvents } from './job-run.js';

export interface JobRunner {
  /** queues a job (or answers the one already waiting); returns its id */
  request(trigger: JobTrigger): number;
  /** takes up the jobs a killed or stopped service left (see `jobsToResume`); returns their ids */
  resume(): number[];
  /** the job running now, or null */
  running(): number | null;
  /** stops the running job (marked interrupted) and waits for its process; nothing starts afterwards */
  stop(reason: string): Promise<void>;
}

export interface JobRunnerOptions {
  db: Db;
  settings: Settings;
  /** the command that runs one job (`node .../main.js job`); `--id`, `--db`, `--mirror` and `--config` are added */
  command: [string, ...string[]];
  events?: JobEvents;
}

/** How long a job's process has to stop (its crawl's or fetch's work ended, its verdict written) before it is killed. */
const STOP_GRACE_MS = 30_000;
/** How often a job still running in a process of a killed service is looked at, until it has stopped. */
const RECHECK_MS = 1000;
/** Characters of a job process's standard error kept for the message of a job it left without a verdict. */
const STDERR_KEPT = 2000;

/** Why a job's process ended without a verdict, as the job's error. */
function deathOf(exit: ProcessExit | Error, stderr: string): { code: string; message: string } {
  if (exit instanceof Error) {
    return { code: ErrorCode.SPAWN_FAILED, message: `the job's process could not be started: ${exit.message}` };
  }
  // the process's own failure (`fodder: error [CODE]: ...`) names its code
  const code = /\[([A-Z][A-Z_]+)\]/.exec(stderr)?.[1] ?? ErrorCode.BUG;
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  const said = stderr
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(-3)
    .join(' / ');
  return { code, message: `the job's process ${how} without a verdict${said ? `: ${said}` : ''}` };
}

/** How much the job's process yields the cores to the service (nice(1)). */
const JOB_NICENESS = 10;

export function createJobRunner(o: JobRunnerOptions): JobRunner {
  const { db, settings, events = {} } = o;
  const [program, ...programArgs] = o.command;
  const owner = currentOwner();
  const queue: number[] = [];
  let current: number | null = null;
  let abort: AbortController | null = null;
  let loop: Promise<void> | null = null;
  let recheck: NodeJS.Timeout | null = null;
  let stopped = false;

  /** One job in a process of its own, until that process has ended; its job has a verdict then. */
  const run = async (id: number, signal: AbortSignal): Promise<void> => {
    const args = [...programArgs, '--id', String(id), '--db', settings.db, '--mirror', settings.mirror];
    if (settings.file !== null) args.push('--config', settings.file);
    // at a lower priority (nice 10, inherited by its Nix processes and threads): the service's
    // answers come first when the two share the cores (docs/performance.md, bench:serve)
    const child = startProcess('nice', ['-n', String(JOB_NICENESS), program, ...args], {
      signal,
      ipc: { graceMs: STOP_GRACE_MS },
      stderrLimit: { max: STDERR_KEPT, keep: 'tail' },
    });
    let verdict = false;
    try {
      for await (const m of child.messages()) if (deliverJobMessage(db, id, m, events)) verdict = true;
    } catch {
      // the channel failed: the exit says what happened
    }
    const exit = await child.exit.catch((err: Error) => err);
    if (verdict) return;
    if (jobsRunningElsewhere(db).includes(id)) {
      // another live process runs it (this one was refused, JOB_TAKEN): taken up when that one has ended
      watch([id]);
      return;
    }
    const death = deathOf(exit, child.stderr());
    if (signal.aborted)
      endUnfinishedJob(db, id, 'interrupted', { code: ErrorCode.INTERRUPTED, message: `stopped by ${String(signal.reason)} (${death.message})` });
    else endUnfinishedJob(db, id, 'failed', death);
    // (a verdict the process wrote but could not tell is kept, and told now)
    const job = jobById(db, id);
    if (job) events.finished?.(job);
  };

  const drain = async () => {
    while (!stopped && queue.length > 0) {
      const id = queue.shift()!;
      current = id;
      abort = new AbortController();
      try {
        await run(id, abort.signal);
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

  const resume = (): number[] => {
    const ids = jobsToResume(db).filter((id) => !queue.includes(id) && id !== current);
    queue.push(...ids);
    if (ids.length > 0) kick();
    return ids;
  };
  /** Jobs still running in a live process not ours (a killed service's job process, stopping): taken up once it has. */
  const watch = (waiting: number[]) => {
    if (stopped || waiting.length === 0) return;
    recheck = setTimeout(() => {
      recheck = null;
      const still = new Set(jobsRunningElsewhere(db));
      if (waiting.some((id) => !still.has(id))) resume();
      watch(waiting.filter((id) => still.has(id)));
    }, RECHECK_MS);
    recheck.unref();
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
      const ids = resume();
      watch(jobsRunningElsewhere(db).filter((id) => id !== current));
      return ids;
    },
    running: () => current,
    async stop(reason) {
      stopped = true;
      if (recheck) clearTimeout(recheck);
      abort?.abort(reason);
      await loop;
    },
  };
}
