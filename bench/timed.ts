/**
 * Running a command for a benchmark: wall time, CPU seconds and peak memory, measured the same
 * way by every benchmark that starts fodder or Nix as a process.
 */
import { execa } from 'execa';
import { readdirSync, readFileSync } from 'node:fs';

export interface TimedOptions {
  /** added to the environment */
  env?: Record<string, string>;
  /** throw when the command fails (default true) */
  mustSucceed?: boolean;
  /** sync, then rest this many seconds before the command starts (see below) */
  settleSec?: number;
}

export interface Timed {
  ms: number;
  /** CPU seconds of the command's process tree */
  cpu: number;
  /** CPU seconds of the whole machine over the run (the command and anything else, which on a quiet machine is nothing) */
  machineCpu: number;
  /** CPU seconds by process name (node: fodder's process with its worker threads; helper: its helper processes) */
  byName: Record<string, number>;
  /** peak of the resident memory of the whole process tree, summed (KiB, sampled every 250 ms) */
  peakKb: number;
  /** the largest resident memory of the command or a descendant it waited for (KiB, /usr/bin/time's %M) */
  maxRssKb: number;
  ok: boolean;
  stdout: string;
  stderr: string;
}

/** CPU seconds the whole machine has spent busy (user, nice, system; from /proc/stat). */
function machineCpu(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6]) / 100;
}

/**
 * The processes of the tree below `pid` (not `pid` itself): resident KiB summed, and each one's
 * CPU ticks so far (fodder's Nix processes are its helpers' children, and are killed rather
 * than waited for at the end, so rusage would not count them).
 */
function sampleTree(pid: number, ticks: Map<number, number>, names: Map<number, string>): number {
  const children = new Map<number, number[]>();
  const info = new Map<number, { rssKb: number; ticks: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // after the command: state ppid ... utime (14th field of stat) stime (15th) ... rss (24th), in pages
      info.set(Number(name), { rssKb: Number(f[21]) * 4, ticks: Number(f[11]) + Number(f[12]) });
      let comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (comm === 'node' && !names.has(Number(name)) && readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('nix-spawner')) comm = 'helper';
      if (!names.has(Number(name))) names.set(Number(name), comm);
      const ppid = Number(f[1]);
      (children.get(ppid) ?? children.set(ppid, []).get(ppid)!).push(Number(name));
    } catch {
      /* gone */
    }
  }
  let rss = 0;
  const stack = [...(children.get(pid) ?? [])];
  while (stack.length) {
    const p = stack.pop()!;
    const i = info.get(p);
    if (i) {
      rss += i.rssKb;
      ticks.set(p, Math.max(ticks.get(p) ?? 0, i.ticks));
    }
    stack.push(...(children.get(p) ?? []));
  }
  return rss;
}

// A run may start on a settled disk. ext4 without a journal (this machine's root volume) skips
// inodes deleted in the last 60 s (360 s while their inode table block is dirty) when it
// allocates new ones, scanning past every one of them: a run that starts right after another
// has deleted 50,000 files (a chroot store's lock files, a removed store) pays seconds of system
// time for the other's deletions. So benchmarks remove stores only at the end, and before each
// run sync and wait `settleSec` seconds.
async function settled(sec: number): Promise<void> {
  await execa('sync');
  if (sec > 0) await new Promise((r) => setTimeout(r, sec * 1000));
}

/**
 * Runs a command under /usr/bin/time (the largest resident memory of any one of its processes),
 * timing it and sampling its process tree: the peak of its summed resident memory, and its CPU
 * seconds.
 */
export async function timed(cmd: string, args: string[], options: TimedOptions = {}): Promise<Timed> {
  const { env = {}, mustSucceed = true, settleSec } = options;
  if (settleSec !== undefined) await settled(settleSec);
  const t0 = process.hrtime.bigint();
  const c0 = machineCpu();
  const child = execa('/usr/bin/time', ['-f', '%M', cmd, ...args], { reject: false, env, stdout: 'pipe', stderr: 'pipe', maxBuffer: 1 << 30 });
  let peakKb = 0;
  const ticks = new Map<number, number>();
  const names = new Map<number, string>();
  const sample = () => {
    if (child.pid) peakKb = Math.max(peakKb, sampleTree(child.pid, ticks, names));
  };
  const poll = setInterval(sample, 250);
  const r = await child;
  clearInterval(poll);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const machine = machineCpu() - c0;
  const cpu = [...ticks.values()].reduce((a, b) => a + b, 0) / 100;
  const byName: Record<string, number> = {};
  for (const [p, t] of ticks) byName[names.get(p) ?? '?'] = (byName[names.get(p) ?? '?'] ?? 0) + t / 100;
  // /usr/bin/time's line is the last of standard error
  const errLines = String(r.stderr).replace(/\n$/, '').split('\n');
  const maxRssKb = Number(errLines.pop());
  const stderr = errLines.join('\n');
  if (r.exitCode !== 0 && mustSucceed) throw new Error(`${cmd} ${args.slice(0, 3).join(' ')} failed (${r.exitCode}): ${stderr.slice(-3000)}`);
  return { ms, cpu, machineCpu: machine, byName, peakKb, maxRssKb, ok: r.exitCode === 0, stdout: String(r.stdout), stderr };
}

/** The middle value (the upper of the two middle ones for an even count). */
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
