/** Command-line options of the real-tree benchmarks (`--name value`), and the package set they need. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export function realTreeArgs(usage: string): { opt: (name: string, dflt: string) => string; flag: (name: string) => boolean; nixpkgs: string } {
  const argv = process.argv.slice(2);
  const opt = (name: string, dflt: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : dflt;
  };
  const nixpkgs = resolve(opt('nixpkgs', ''));
  if (!argv.includes('--nixpkgs') || !existsSync(join(nixpkgs, 'default.nix'))) {
    console.error(`usage: ${usage}`);
    process.exit(2);
  }
  return { opt, flag: (name) => argv.includes(`--${name}`), nixpkgs };
}

/** The `fodder crawl` arguments of a real-tree run: one database, the targets, the workers, JSON out. */
export function crawlArgs(o: { nixpkgs: string; db: string; workers: string; systems: string[]; variants: string[] }): string[] {
  return [
    'crawl',
    '--nixpkgs',
    o.nixpkgs,
    '--db',
    o.db,
    '--workers',
    o.workers,
    '--no-progress',
    '--json',
    ...o.systems.flatMap((s) => ['--system', s]),
    ...o.variants.flatMap((v) => ['--variant', v]),
  ];
}
