/** What every Nix process the crawl runs shares: its environment, its store arguments, reading its messages and its memory. */
import { readFileSync } from 'node:fs';
import { drvStoreUrl } from '../graph/store-slots.js';

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
  NIX_SHOW_STATS: '0',
  NIXPKGS_ALLOW_UNFREE: '',
  NIXPKGS_ALLOW_BROKEN: '',
  NIXPKGS_ALLOW_INSECURE: '',
  NIXPKGS_ALLOW_UNSUPPORTED_SYSTEM: '',
  NIXPKGS_CONFIG: '',
  NIXPKGS_ALLOW_NONSOURCE: '',
  MALLOC_TRIM_THRESHOLD_: String(16 << 20),
};

/** Arguments common to every nix-instantiate the crawl runs: its drv store directory, or the system store. */
export function nixStoreArgs(store: string | null): string[] {
  return store ? ['--store', drvStoreUrl(store)] : [];
}

/** The resident size of a process, KiB; null when it is gone. */
export function rssKb(pid: number): number | null {
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
    .filter((l) => !l.startsWith('trace: ') && !l.startsWith("(use '--show-trace'") && !l.startsWith('warning: you did not specify'))
    .join('\n')
    .trim();
}
