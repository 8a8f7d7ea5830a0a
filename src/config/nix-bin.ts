import { accessSync, constants } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { FodderError, ErrorCode } from '../errors.js';
import type { RawConfig } from './schema.js';

/**
 * Which Nix fodder runs. Every Nix command (`nix-instantiate`, `nix-store`, `nix`) is run by its
 * name and found on PATH: by this process, its worker threads and the processes they start (the
 * crawl's helper process, the fetch's realisations). With the config's `nix.bin`, that directory
 * goes first on this process's PATH, which all of them inherit; so this is called when the config
 * is read, before any of them starts. Returns the directory, or null when PATH decides alone.
 */
export function selectNix(raw: RawConfig, base: string, origin: string): string | null {
  if (raw.nix.bin === null) return null;
  const dir = resolve(base, raw.nix.bin);
  if (!isExecutable(join(dir, 'nix-instantiate'))) {
    throw new FodderError(ErrorCode.CONFIG_INVALID, `${origin}: key "nix.bin": ${dir} holds no executable nix-instantiate`, {
      file: origin,
      key: 'nix.bin',
      value: dir,
    });
  }
  const rest = (process.env.PATH ?? '').split(delimiter).filter((d) => d && resolve(d) !== dir);
  process.env.PATH = [dir, ...rest].join(delimiter);
  return dir;
}

/** The file PATH finds for a Nix command (as every spawn of it by name will), or null. */
export function nixCommand(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name);
  }
  return null;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
