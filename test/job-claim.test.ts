/**
 * One process writes a job's row at a time (claimJob, src/db/jobs.ts): a job's process takes a
 * queued or interrupted job, or one whose process is gone, and is refused one that a live process
 * runs or that has ended. A killed service's job process that has not stopped yet and the next
 * service's job process cannot both write the same job.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { openDb } from '../src/db/open.js';
import { addJob, claimJob, ensureJobSchema, finishJob, jobById } from '../src/db/jobs.js';
import { currentOwner, type Owner } from '../src/db/owner.js';
import { tempDir } from './helpers/cli.js';

/** A process that has ended: its owner record names no live process. */
function goneOwner(): Owner {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return { ...currentOwner(), pid: Number(r.stdout) };
}

function newDb() {
  const db = openDb(join(tempDir('fodder-job-claim-'), 'f.db'), { create: true });
  ensureJobSchema(db);
  return db;
}

describe('claimJob', () => {
  test('a queued job is taken once: a second live claimant is refused, and the row stays the first one’s', () => {
    const db = newDb();
    const service = goneOwner(); // the service that queued it was killed
    const id = addJob(db, 'request', service);
    const first = currentOwner(); // a live process: the killed service's job process
    expect(claimJob(db, id, first)).toBe(true);
    expect(jobById(db, id)?.status).toBe('running');
    const second = { ...currentOwner(), pid: first.pid }; // any claimant while the first lives
    expect(claimJob(db, id, second)).toBe(false);
    db.close();
  });

  test('a job whose process is gone, or that was interrupted, is taken up; one that ended is not', () => {
    const db = newDb();
    const id = addJob(db, 'schedule', goneOwner());
    expect(claimJob(db, id, goneOwner())).toBe(true); // "running" in a process that has ended
    expect(claimJob(db, id, currentOwner())).toBe(true);
    finishJob(db, id, 'interrupted', { code: 'INTERRUPTED', message: 'stopped by SIGTERM' });
    expect(claimJob(db, id, currentOwner())).toBe(true);
    expect(jobById(db, id)?.status).toBe('running');
    finishJob(db, id, 'done');
    expect(claimJob(db, id, currentOwner())).toBe(false);
    expect(jobById(db, id)?.status).toBe('done');
    expect(claimJob(db, id + 1, currentOwner())).toBe(false);
    db.close();
  });
});
