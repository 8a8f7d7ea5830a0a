import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * The process that runs a crawl, recorded with it so that a `running` crawl whose process is
 * gone can be told apart. A process id alone is not enough: ids are reused, and a database
 * outlives a reboot. So the kernel's boot id and the process's start time (clock ticks since
 * boot, /proc/PID/stat) are kept too; together they name one process of one boot.
 */
export interface Owner {
  pid: number;
  host: string;
  bootId: string | null;
  start: number | null;
}

function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
}

/**
 * The fields of /proc/PID/stat from the third on (state, ppid, ...: index 0 is field 3), or null
 * when there is no such process (or no /proc).
 */
export function procStat(pid: number | string): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) is in parentheses and may hold spaces: count from after it
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Field 22 of /proc/PID/stat: the process's start time, in clock ticks after boot. */
function startTime(pid: number): number | null {
  const ticks = Number(procStat(pid)?.[19]);
  return Number.isFinite(ticks) ? ticks : null;
}

/** This process, as a crawl records it. */
export function currentOwner(): Owner {
  return { pid: process.pid, host: hostname(), bootId: bootId(), start: startTime(process.pid) };
}

/** Whether the process a crawl recorded still runs (false for a crawl recorded without one). */
export function ownerAlive(o: { pid: number | null; bootId: string | null; start: number | null }): boolean {
  if (o.pid === null) return false;
  const boot = bootId();
  if (o.bootId !== null && boot !== null) {
    // another boot (or another host: a database in WAL mode is not shared across hosts) ran it
    if (o.bootId !== boot) return false;
    // a process that has ended but was not waited for yet (a zombie, kept by a parent or an init that does not reap) is gone
    const stat = procStat(o.pid);
    if (stat === null || stat[0] === 'Z' || stat[0] === 'X') return false;
    return o.start !== null && Number(stat[19]) === o.start;
  }
  try {
    process.kill(o.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A row of a table that records its process (crawls, fetch_runs, jobs). */
export interface OwnedRow<S extends string> {
  status: S;
  pid: number | null;
  boot_id: string | null;
  pid_start: number | null;
}

/** Whether the process a row recorded still runs. */
export function rowOwnerAlive(r: OwnedRow<string>): boolean {
  return ownerAlive({ pid: r.pid, bootId: r.boot_id, start: r.pid_start });
}

/** A row's status as it is now: `running` whose process is gone is `interrupted`. */
export function statusNow<S extends string>(r: OwnedRow<S>): S | 'interrupted' {
  return r.status === 'running' && !rowOwnerAlive(r) ? 'interrupted' : r.status;
}
