import { resolve, dirname } from 'node:path';
import { FodderError } from '../errors.js';
import { numericOption, readConfigFile } from '../config/load.js';
import { fetchSchema } from '../config/schema.js';
import { selectNix } from '../config/nix-bin.js';
import type { RawConfig } from '../config/schema.js';
import type { FodKind } from '../graph/types.js';
import { binaryCacheOptions, type BinaryCacheOptions } from '../mirror/binary-cache.js';
import { NETWORK_DEFAULTS, type NetworkOptions } from './network.js';
import { parseKinds } from './registry.js';

/** The command line of `fodder fetch`, as commander hands it over. */
export interface FetchFlags {
  config?: string;
  db?: string;
  mirror?: string;
  kind?: string[];
  concurrency?: number;
  perHost?: number;
  retryFailed?: boolean;
  json?: boolean;
  connectTimeout?: string;
  idleTimeout?: string;
  retries?: string;
  retryDelay?: string;
  maxSize?: string;
  signKey?: string;
}

/** How the nix fallback runs (see src/fetch/plugins/nix.ts). */
export interface NixFallbackSettings {
  /** the store that builds; null: the user's default store */
  store: string | null;
  /** `--option NAME VALUE` for every Nix call */
  options: Record<string, string>;
  timeoutMs: number;
  /** realisations at once */
  jobs: number;
}

/** The binary cache's options, without its place (always `<mirror>/cache`). */
export type CacheSettings = Omit<BinaryCacheOptions, 'mirrorDir'>;

export interface FetchSettings {
  db: string;
  mirror: string;
  kinds: FodKind[];
  retryFailed: boolean;
  network: NetworkOptions;
  cache: CacheSettings;
  /** null: the nix fallback is off */
  nix: NixFallbackSettings | null;
}

interface Loaded { raw: RawConfig | null; base: string; db: string; mirror: string }

/** The config file (when given) and the two paths every fetch-side command needs. */
function load(flags: Pick<FetchFlags, 'config' | 'db' | 'mirror'>): Loaded {
  const raw = flags.config ? readConfigFile(flags.config) : null;
  const base = flags.config ? dirname(resolve(flags.config)) : process.cwd();
  if (raw && flags.config) selectNix(raw, base, resolve(flags.config));
  const db = flags.db ? resolve(flags.db) : raw?.db ? resolve(base, raw.db) : resolve('data/fodder.db');
  const mirror = flags.mirror ? resolve(flags.mirror) : raw ? resolve(base, raw.fetch.mirror) : resolve('data/mirror');
  return { raw, base, db, mirror };
}

/** The database and the mirror directory (`fodder verify`): flags, then the config file, then defaults. */
export function fetchPaths(flags: Pick<FetchFlags, 'config' | 'db' | 'mirror'>): { db: string; mirror: string } {
  const { db, mirror } = load(flags);
  return { db, mirror };
}

/**
 * Settings for one fetch run: defaults, then the config file's `fetch:` section, then the
 * command line. Validated once here; a bad value names its option or key.
 */
export function fetchSettings(flags: FetchFlags): FetchSettings {
  // the same bounds as the config file's fetch: section
  const field = fetchSchema.shape;
  const f = {
    concurrency: numericOption('--concurrency', field.concurrency, flags.concurrency),
    perHost: numericOption('--per-host', field.perHost, flags.perHost),
    connectTimeout: numericOption('--connect-timeout', field.connectTimeoutSec, flags.connectTimeout),
    idleTimeout: numericOption('--idle-timeout', field.idleTimeoutSec, flags.idleTimeout),
    retries: numericOption('--retries', field.retries, flags.retries),
    retryDelay: numericOption('--retry-delay', field.retryDelaySec, flags.retryDelay),
    maxSize: numericOption('--max-size', field.maxSizeMb, flags.maxSize),
  };
  const { raw, base, db, mirror } = load(flags);
  const cfg = raw?.fetch;
  const selection = parseKinds(flags.kind?.length ? flags.kind : cfg?.kinds);
  const secs = (v: number | undefined, fallbackMs: number) => (v === undefined ? fallbackMs : Math.round(v * 1000));
  const nixCfg = cfg?.nix;
  return {
    db,
    mirror,
    kinds: selection.kinds,
    retryFailed: Boolean(flags.retryFailed),
    network: {
      ...NETWORK_DEFAULTS,
      concurrency: f.concurrency ?? cfg?.concurrency ?? NETWORK_DEFAULTS.concurrency,
      perHost: f.perHost ?? cfg?.perHost ?? NETWORK_DEFAULTS.perHost,
      connectTimeoutMs: secs(f.connectTimeout ?? cfg?.connectTimeoutSec, NETWORK_DEFAULTS.connectTimeoutMs),
      idleTimeoutMs: secs(f.idleTimeout ?? cfg?.idleTimeoutSec, NETWORK_DEFAULTS.idleTimeoutMs),
      retries: f.retries ?? cfg?.retries ?? NETWORK_DEFAULTS.retries,
      retryDelayMs: secs(f.retryDelay ?? cfg?.retryDelaySec, NETWORK_DEFAULTS.retryDelayMs),
      maxBytes: Math.round((f.maxSize ?? cfg?.maxSizeMb ?? NETWORK_DEFAULTS.maxBytes / 2 ** 20) * 2 ** 20),
    },
    cache: cacheSettings(mirror, cfg?.cache, base, flags.signKey),
    nix: selection.nix || nixCfg?.enabled ? {
      store: nixCfg?.store ? resolve(base, nixCfg.store) : null,
      options: nixCfg?.options ?? {},
      timeoutMs: Math.round((nixCfg?.timeoutSec ?? 7200) * 1000),
      jobs: nixCfg?.jobs ?? 2,
    } : null,
  };
}

/** The config's `fetch.cache` (key file relative to the config file), with `--sign-key` winning. */
function cacheSettings(mirror: string, cfg: RawConfig['fetch']['cache'] | undefined, base: string, signKey: string | undefined): CacheSettings {
  const keyFile = signKey ? resolve(signKey) : cfg?.secretKeyFile ? resolve(base, cfg.secretKeyFile) : undefined;
  try {
    const o = binaryCacheOptions(mirror, { ...cfg, secretKeyFile: keyFile });
    return { compression: o.compression, level: o.level, secretKey: o.secretKey, priority: o.priority, flat: o.flat };
  } catch (e) {
    if (signKey && e instanceof FodderError) {
      throw new FodderError(e.code, e.message.replace(/^cache\.secretKeyFile:/, '--sign-key:'), { option: '--sign-key', file: keyFile });
    }
    throw e;
  }
}
