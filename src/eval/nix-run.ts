import { spawner, type SpawnedRun } from './spawner.js';
import { readFileSync } from 'node:fs';
import { drvStoreUrl } from '../graph/store-slots.js';

const MARKER = 'trace: @fodder@';

export interface WalkerRun {
  /** the package set loaded (the walker's `ready` record was seen) */
  ready: boolean;
  records: Record<string, unknown>[];
  exitCode: number | null;
  signal: string | null;
  killedFor: 'timeout' | 'memory' | null;
  /** what Nix printed after the last record: its error message when it died */
  tail: string;
  ms: number;
  /** the largest resident size seen while polling, KiB */
  peakRssKb: number;
}

export interface WalkerRunOptions {
  walker: string;
  specFile: string;
  configNix: string | null;
  store: string | null;
  timeoutMs: number;
  memoryMb: number;
  /** Nix's TMPDIR */
  tmpDir?: string;
  /** called with each record as it arrives, while Nix goes on evaluating */
  onRecord?: (record: Record<string, unknown>) => void;
}

/**
 * The environment of every Nix process the crawl runs. The variant's config decides what is
 * allowed, not the caller's environment (nixpkgs reads these). `MALLOC_TRIM_THRESHOLD_`: for
 * every .drv it writes, Nix allocates and frees a buffer at the top of its heap, and glibc's
 * default (give back anything over 128 KiB at once) turns that into a shrink and a regrowth of
 * the heap per .drv, each page faulted in again: 7,441 brk calls and 23,700 page faults for 2,500
 * .drvs, against 41 and 4,500 with 16 MiB kept; on a machine with costly page faults that halved
 * Nix's time (see docs/performance.md). It keeps at most 16 MiB more per Nix process.
 */
export const NIX_ENV: Record<string, string> = {
  NIX_SHOW_STATS: '0', NIXPKGS_ALLOW_UNFREE: '', NIXPKGS_ALLOW_BROKEN: '', NIXPKGS_ALLOW_INSECURE: '',
  NIXPKGS_ALLOW_UNSUPPORTED_SYSTEM: '', NIXPKGS_CONFIG: '', NIXPKGS_ALLOW_NONSOURCE: '',
  MALLOC_TRIM_THRESHOLD_: String(16 << 20),
};

/** Arguments common to every nix-instantiate the crawl runs: its drv store directory, or the system store. */
export function nixStoreArgs(store: string | null): string[] {
  return store ? ['--store', drvStoreUrl(store)] : [];
}

/**
 * Runs the walker once and streams its per-attribute records from stderr. Kills it when it
 * passes its time or memory cap, and says so.
 */
export async function runWalker(o: WalkerRunOptions): Promise<WalkerRun> {
  const args = [
    '--eval', '--strict', '--json', '--read-write-mode',
    ...nixStoreArgs(o.store),
    o.walker,
    '--argstr', 'specFile', o.specFile,
  ];
  if (o.configNix) args.push('--arg', 'extraConfig', o.configNix);
  const started = Date.now();
  const records: Record<string, unknown>[] = [];
  let ready = false;
  let tailLines: string[] = [];
  let pending = '';
  let killedFor: WalkerRun['killedFor'] = null;

  const onLine = (line: string) => {
    if (line.startsWith(MARKER)) {
      const rec = JSON.parse(line.slice(MARKER.length)) as Record<string, unknown>;
      if (rec.ready === true) ready = true;
      else { records.push(rec); o.onRecord?.(rec); }
      tailLines = [];
    } else {
      tailLines.push(line);
      if (tailLines.length > 400) tailLines.shift();
    }
  };
  const onStderr = (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      onLine(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  };
  let child: SpawnedRun;
  try {
    child = spawner().run('nix-instantiate', args, o.tmpDir ? { ...NIX_ENV, TMPDIR: o.tmpDir } : NIX_ENV, onStderr);
  } catch (err) {
    return { ready: false, records: [], exitCode: null, signal: null, killedFor: null, tail: (err as Error).message, ms: 0, peakRssKb: 0 };
  }

  const timer = setTimeout(() => { killedFor = 'timeout'; child.kill(); }, o.timeoutMs);
  const memLimitKb = o.memoryMb * 1024;
  let peakRssKb = 0;
  const poll = setInterval(() => {
    const pid = child.pid;
    if (!pid) return;
    const rss = rssKb(pid);
    if (rss !== null && rss > peakRssKb) peakRssKb = rss;
    if (rss !== null && rss > memLimitKb) { killedFor = 'memory'; child.kill(); }
  }, 100);

  let result: { exitCode: number | null; signal: string | null };
  try {
    result = await child.done;
  } catch (err) {
    result = { exitCode: null, signal: null };
    tailLines.push(`cannot run nix-instantiate: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
    clearInterval(poll);
  }
  if (pending) onLine(pending);
  return {
    ready,
    records,
    exitCode: result.exitCode,
    signal: result.signal,
    killedFor,
    tail: cleanNixMessage(tailLines.join('\n')),
    ms: Date.now() - started,
    peakRssKb,
  };
}

function rssKb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Nix's error text without colours, hints and unrelated traces. */
export function cleanNixMessage(text: string): string {
  // eslint-disable-next-line no-control-regex
  const noColour = text.replace(/\x1b\[[0-9;]*m/g, '');
  return noColour
    .split('\n')
    .filter((l) => !l.startsWith('trace: ') && !l.startsWith("(use '--show-trace'")
      && !l.startsWith('warning: you did not specify'))
    .join('\n')
    .trim();
}
