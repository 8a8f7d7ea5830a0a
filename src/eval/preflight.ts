import { FodderError, ErrorCode } from '../errors.js';
import type { CrawlSettings as Config } from '../config/settings.js';
import { evalJson, unloadableSystems } from './nix-env.js';

/**
 * Refuses a system the package set cannot build for (`--system bogus-system`) before the crawl
 * begins, with Nix's message, rather than record an error for every attribute of it. Asked with
 * the first variant: a system unknown to the package set fails with any. A package set that
 * evaluates for no system at all, this machine's own included, is refused as the package set's
 * failure (NIX_FAILED), never crawled into one error per attribute.
 */
export async function checkSystems(config: Config, store: string | null, signal?: AbortSignal): Promise<void> {
  const [variant] = Object.values(config.variants);
  if (!variant) return;
  const unloadable = (systems: string[]) => unloadableSystems(config.nixpkgs, systems, variant.config, variant.nix, config.overlays, store, signal);
  const failed = await unloadable(config.systems);
  if (failed.length === 0) return;
  if (failed.length === config.systems.length) {
    // nothing evaluates: the systems, or the package set itself? It must for this machine's own
    // system; when it does not, the package set is what fails, said with Nix's message for it
    const own = (await evalJson('builtins.currentSystem', store, signal)) as string;
    const ownFailed = config.systems.includes(own) ? failed.find((f) => f.system === own) : (await unloadable([own]))[0];
    if (ownFailed) {
      throw new FodderError(
        ErrorCode.NIX_FAILED,
        `the package set ${config.nixpkgs} does not evaluate its stdenv, not even for this machine's system "${own}": ${ownFailed.message}`,
        { systems: config.systems, own },
      );
    }
  }
  const { system, message } = failed[0];
  const others =
    failed.length > 1
      ? ` (nor for ${failed
          .slice(1)
          .map((f) => `"${f.system}"`)
          .join(', ')})`
      : '';
  throw new FodderError(
    ErrorCode.SYSTEM_UNKNOWN,
    `the package set ${config.nixpkgs} cannot evaluate its stdenv for system "${system}"${others} (a misspelt system?): ${message}`,
    { systems: failed.map((f) => f.system) },
  );
}
