import { FodderError } from '../errors.js';
import type { FetchSettings, NixFallbackSettings } from '../config/settings.js';
import type { FodKind } from '../graph/types.js';
import type { BinaryCacheOptions } from '../mirror/binary-cache.js';
import { binaryCacheOptions } from './cache-options.js';
import { networkOptions, type NetworkOptions } from './network.js';
import { parseKinds } from './registry.js';

/** The binary cache's options, without its place (always `<mirror>/cache`). */
export type CacheSettings = Required<Omit<BinaryCacheOptions, 'mirrorDir' | 'level' | 'hashPool'>> & Pick<BinaryCacheOptions, 'level'>;

/** How the nix fallback runs (see src/fetch/plugins/nix.ts). */
export type NixFallbackRun = Omit<NixFallbackSettings, 'enabled'>;

/** What one fetch run works with, made from the resolved settings (src/config/settings.ts). */
export interface FetchRunSettings {
  kinds: FodKind[];
  network: NetworkOptions;
  cache: CacheSettings;
  /** null: the nix fallback is off */
  nix: NixFallbackRun | null;
}

/**
 * The fetch's reading of the settings: the kinds named (`nix` among them turns the fallback
 * on, as `fetch.nix.enabled` does), the network options, and the cache with its key read.
 */
export function fetchRunSettings(s: FetchSettings): FetchRunSettings {
  const selection = parseKinds(s.kinds);
  const { enabled, ...nix } = s.nix;
  return { kinds: selection.kinds, network: networkOptions(s.network), cache: cacheSettings(s), nix: selection.nix || enabled ? nix : null };
}

/** The cache's options with its secret key read; a key that cannot be read is named by where it was given. */
function cacheSettings(s: FetchSettings): CacheSettings {
  const { secretKeyFile, secretKeyFrom, ...cache } = s.cache;
  try {
    const { secretKey } = binaryCacheOptions(s.mirror, { ...cache, secretKeyFile: secretKeyFile ?? undefined });
    return { ...cache, secretKey: secretKey ?? null };
  } catch (e) {
    if (secretKeyFrom === '--sign-key' && e instanceof FodderError) {
      throw new FodderError(e.code, e.message.replace(/^cache\.secretKeyFile:/, '--sign-key:'), { option: '--sign-key', file: secretKeyFile });
    }
    throw e;
  }
}
