import { FodderError, ErrorCode } from '../errors.js';
import type { Config } from '../config/load.js';
import { unloadableSystems } from './nix-env.js';

/**
 * Refuses a system the package set cannot build for (`--system bogus-system`) before the crawl
 * begins, with Nix's message, rather than record an error for every attribute of it. Asked with
 * the first variant: a system unknown to the package set fails with any.
 */
export async function checkSystems(config: Config, store: string | null): Promise<void> {
  const [variant] = Object.values(config.variants);
  if (!variant) return;
  const failed = await unloadableSystems(config.nixpkgs, config.systems, variant.config, variant.nix, config.overlays, store);
  if (failed.length === 0) return;
  const { system, message } = failed[0];
  const others = failed.length > 1 ? ` (nor for ${failed.slice(1).map((f) => `"${f.system}"`).join(', ')})` : '';
  throw new FodderError(ErrorCode.SYSTEM_UNKNOWN,
    `the package set ${config.nixpkgs} cannot evaluate its stdenv for system "${system}"${others} (a misspelt system?): ${message}`,
    { systems: failed.map((f) => f.system) });
}
