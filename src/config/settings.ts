import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { FodderError, ErrorCode } from '../errors.js';
import { packageRoot } from './defaults.js';
import { numericOption, optionValue, readConfigData, validateConfig } from './load.js';
import { selectNix } from './nix-bin.js';
import { bundleSchema, configSchema, fetchSchema, listenSchema, serviceSchema, systemSchema, type RawConfig, type VariantConfig } from './schema.js';

/**
 * The one resolver of settings. Every command asks it, and it alone decides: a command-line flag
 * wins over the config file's key, which wins over the schema's default (src/config/schema.ts,
 * the only place a default is written). What it returns is complete: no stage supplies a
 * default of its own.
 */

/** What a crawl reads (src/eval). Paths are absolute. */
export interface CrawlSettings {
  nixpkgs: string;
  /** the package set's git commit, when the service follows a branch (`service.nixpkgs`); null: a plain path */
  revision: string | null;
  systems: string[];
  variants: Record<string, VariantConfig>;
  overlays: string[];
  exhaustive: boolean;
  maxDepth: number;
  excludeTop: string[];
  excludeAnywhere: string[];
  workers: number;
  shardSize: number;
  explainErrors: boolean;
  /** the kept drv store, or null: the .drv files are kept only in the database */
  store: string | null;
  db: string;
  limits: RawConfig['limits'];
}

/** How the fetch talks to servers: the `fetch:` network keys in milliseconds and bytes. */
export interface NetworkSettings {
  /** transfers at once, over all hosts */
  concurrency: number;
  /** transfers at once to one host */
  perHost: number;
  connectTimeoutMs: number;
  /** no byte for this long (waiting for headers or inside the body) ends the try */
  idleTimeoutMs: number;
  /** extra tries of a URL after a transient failure */
  retries: number;
  /** first backoff; doubles each retry, with jitter */
  retryDelayMs: number;
  /** size cap of one download */
  maxBytes: number;
}

/** `fetch.cache`, with the key file resolved (and where it was named, for messages). */
export interface CacheSettings extends Omit<RawConfig['fetch']['cache'], 'secretKeyFile'> {
  secretKeyFile: string | null;
  secretKeyFrom: '--sign-key' | 'fetch.cache.secretKeyFile' | null;
}

/** `fetch.nix`: the fallback that realises a FOD's .drv with Nix. */
export interface NixFallbackSettings {
  /** the config's `enabled` (`--kind nix` turns it on as well) */
  enabled: boolean;
  /** the store that builds; null: the user's default store */
  store: string | null;
  /** `--option NAME VALUE` for every Nix call */
  options: Record<string, string>;
  timeoutMs: number;
  /** realisations at once */
  jobs: number;
}

export interface FetchSettings {
  mirror: string;
  /** the kind names given (`--kind`, else `fetch.kinds`), unparsed; null: every kind */
  kinds: string[] | null;
  network: NetworkSettings;
  cache: CacheSettings;
  nix: NixFallbackSettings;
}

/** `service`: what `fodder serve` listens on and when it runs its jobs. */
export interface ServiceSettings {
  host: string;
  port: number;
  /** cron pattern; null: jobs run only on request */
  schedule: string | null;
  /** the file holding the admin token (absolute), or null: no job is started on request */
  tokenFile: string | null;
  /** where the token file was named, for messages */
  tokenFrom: string | null;
  /** the branch the service follows (`service.nixpkgs`), or null: the top-level `nixpkgs` path as it is */
  git: PackageSetGit | null;
  /** how many revisions' crawls `fodder gc` keeps after each job; null: nothing is removed */
  keep: number | null;
}

/** `service.nixpkgs`: a git branch, fetched into a clone of the service's own before each crawl. */
export interface PackageSetGit {
  url: string;
  branch: string;
  /** the clone (absolute): `nixpkgs-git/` beside the database */
  dir: string;
}

/** `bundle`: the keys whose signatures manifests and imported narinfos must carry. */
export interface BundleSettings {
  /** public keys (`name:base64`): `bundle.trustedKeys` and those of the `--trusted-key` files */
  trustedKeys: string[];
}

export interface Settings {
  /** the config file (absolute), or null */
  file: string | null;
  /** the config's `nix.bin` (first on PATH from now on), or null: the Nix commands on PATH */
  nixBin: string | null;
  db: string;
  mirror: string;
  crawl: CrawlSettings;
  fetch: FetchSettings;
  service: ServiceSettings;
  bundle: BundleSettings;
}

/** The command-line flags that set a setting, as commander hands them over (numbers may still be text). */
export interface SettingFlags {
  db?: string;
  mirror?: string;
  store?: string;
  nixpkgs?: string;
  systems?: string[];
  variants?: string[];
  exhaustive?: boolean;
  workers?: number;
  kinds?: string[];
  concurrency?: number | string;
  perHost?: number | string;
  connectTimeout?: number | string;
  idleTimeout?: number | string;
  retries?: number | string;
  retryDelay?: number | string;
  maxSize?: number | string;
  signKey?: string;
  /** `fodder serve --listen HOST:PORT` */
  listen?: string;
  /** false: `fodder serve --no-schedule` */
  schedule?: boolean;
  /** `fodder gc --keep N` */
  keep?: number | string;
  /** `--trusted-key FILE` (repeatable): files holding a public key each */
  trustedKeys?: string[];
}

export interface ResolveOptions {
  configFile?: string;
  flags?: SettingFlags;
  /** what this command cannot run without: `nixpkgs`, the package set must exist */
  need?: { nixpkgs?: boolean };
}

/** The fetch's numeric flags, checked against the schema of the key each sets (the same bounds). */
function fetchFlags(flags: SettingFlags) {
  const field = fetchSchema.shape;
  return {
    concurrency: numericOption('--concurrency', field.concurrency, flags.concurrency),
    perHost: numericOption('--per-host', field.perHost, flags.perHost),
    connectTimeoutSec: numericOption('--connect-timeout', field.connectTimeoutSec, flags.connectTimeout),
    idleTimeoutSec: numericOption('--idle-timeout', field.idleTimeoutSec, flags.idleTimeout),
    retries: numericOption('--retries', field.retries, flags.retries),
    retryDelaySec: numericOption('--retry-delay', field.retryDelaySec, flags.retryDelay),
    maxSizeMb: numericOption('--max-size', field.maxSizeMb, flags.maxSize),
  };
}

/** Whether the config file's data sets `key` (a default fills it otherwise). */
function isSet(data: unknown, key: readonly string[]): boolean {
  let at: unknown = data;
  for (const k of key) {
    if (typeof at !== 'object' || at === null || !(k in at)) return false;
    at = (at as Record<string, unknown>)[k];
  }
  return at !== undefined;
}

/** Resolves every setting: flags, then the config file, then the schema's defaults. */
export function resolveSettings(o: ResolveOptions = {}): Settings {
  const flags = o.flags ?? {};
  const f = fetchFlags(flags);
  const file = o.configFile ? resolve(o.configFile) : null;
  const data = file ? readConfigData(file) : {};
  const raw = validateConfig(data ?? {}, file ?? '<defaults>');
  const base = file ? dirname(file) : process.cwd();
  const nixBin = selectNix(raw, base, file ?? '<defaults>');

  /**
   * A path: a flag's is relative to the current directory, a config key's to the config file's
   * directory, a default's to `defaultBase` (the current directory for `db`, fodder's own
   * directory for `nixpkgs`, the config file's directory for `fetch.mirror`).
   */
  const path = (flag: string | undefined, key: readonly string[], value: string, defaultBase: string): string =>
    flag ? resolve(flag) : resolve(isSet(data, key) ? base : defaultBase, value);

  const db = path(flags.db, ['db'], raw.db, process.cwd());
  const mirror = path(flags.mirror, ['fetch', 'mirror'], raw.fetch.mirror, base);
  const nixpkgs = path(flags.nixpkgs, ['nixpkgs'], raw.nixpkgs, packageRoot());
  if (o.need?.nixpkgs) {
    checkNixpkgs(nixpkgs, flags.nixpkgs ? '--nixpkgs' : isSet(data, ['nixpkgs']) ? `${o.configFile}: key "nixpkgs"` : 'the bundled package set');
  }
  const store = flags.store ? resolve(flags.store) : raw.store === null ? null : resolve(base, raw.store);

  const crawl: CrawlSettings = {
    nixpkgs,
    revision: null,
    systems: flags.systems?.length ? flags.systems.map((s) => optionValue('--system', systemSchema, s)) : raw.systems,
    variants: chooseVariants(raw.variants, flags.variants),
    overlays: raw.overlays.map((v) => resolve(base, v)),
    exhaustive: flags.exhaustive ?? raw.exhaustive,
    maxDepth: raw.maxDepth,
    excludeTop: raw.exclude.top,
    excludeAnywhere: raw.exclude.anywhere,
    workers: numericOption('--workers', configSchema.shape.workers, flags.workers) ?? raw.workers,
    shardSize: raw.shardSize,
    explainErrors: raw.explainErrors,
    store,
    db,
    limits: raw.limits,
  };
  return {
    file,
    nixBin,
    db,
    mirror,
    crawl,
    fetch: fetchSettings(raw.fetch, f, flags, base, mirror),
    service: serviceSettings(raw.service, flags, base, file, db),
    bundle: { trustedKeys: [...raw.bundle.trustedKeys, ...(flags.trustedKeys ?? []).map(readPublicKey)] },
  };
}

/**
 * The settings of an on-demand target (`fodder sources --expr`, ...): the crawl's, except that
 * without `--system` / `--variant` one target is evaluated, the one `sources ATTR` prefers:
 * `x86_64-linux` and `default`.
 */
export function targetSettings(o: ResolveOptions): CrawlSettings {
  const flags = o.flags ?? {};
  return resolveSettings({
    ...o,
    flags: { ...flags, systems: flags.systems?.length ? flags.systems : ['x86_64-linux'], variants: flags.variants?.length ? flags.variants : ['default'] },
  }).crawl;
}

/** A public key file (`--trusted-key FILE`): one `name:base64` line. */
function readPublicKey(file: string): string {
  let text: string;
  try {
    text = readFileSync(resolve(file), 'utf8').trim();
  } catch (e) {
    throw new FodderError(ErrorCode.USAGE, `--trusted-key ${file}: cannot read it (${(e as Error).message})`, { option: '--trusted-key', file });
  }
  const parsed = bundleSchema.shape.trustedKeys.removeDefault().element.safeParse(text);
  if (!parsed.success) throw new FodderError(ErrorCode.USAGE, `--trusted-key ${file}: not a public key (name:base64)`, { option: '--trusted-key', file });
  return parsed.data;
}

function serviceSettings(cfg: RawConfig['service'], flags: SettingFlags, base: string, file: string | null, db: string): ServiceSettings {
  const listen = flags.listen === undefined ? cfg.listen : optionValue('--listen', listenSchema, flags.listen);
  const colon = listen.lastIndexOf(':');
  return {
    host: listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1'),
    port: Number(listen.slice(colon + 1)),
    schedule: flags.schedule === false ? null : cfg.schedule,
    tokenFile: cfg.tokenFile === null ? null : resolve(base, cfg.tokenFile),
    tokenFrom: cfg.tokenFile === null ? null : `${file ?? '<defaults>'}: key "service.tokenFile"`,
    git: cfg.nixpkgs === null ? null : { ...cfg.nixpkgs, url: gitUrl(cfg.nixpkgs.git, base), dir: join(dirname(db), 'nixpkgs-git') },
    keep: numericOption('--keep', serviceSchema.shape.keep, flags.keep) ?? cfg.keep,
  };
}

/** A git URL as git takes it; a plain path (not a URL, not `host:path`) is relative to the config file's directory. */
function gitUrl(url: string, base: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(url) || /^[^/]+:/.test(url) ? url : resolve(base, url);
}

function fetchSettings(cfg: RawConfig['fetch'], f: ReturnType<typeof fetchFlags>, flags: SettingFlags, base: string, mirror: string): FetchSettings {
  const { secretKeyFile, ...cache } = cfg.cache;
  return {
    mirror,
    kinds: flags.kinds?.length ? flags.kinds : (cfg.kinds ?? null),
    network: networkSettings({ ...cfg, ...definedOnly(f) }),
    cache: {
      ...cache,
      secretKeyFile: flags.signKey ? resolve(flags.signKey) : secretKeyFile ? resolve(base, secretKeyFile) : null,
      secretKeyFrom: flags.signKey ? '--sign-key' : secretKeyFile ? 'fetch.cache.secretKeyFile' : null,
    },
    nix: {
      enabled: cfg.nix.enabled,
      store: cfg.nix.store === null ? null : resolve(base, cfg.nix.store),
      options: cfg.nix.options,
      timeoutMs: ms(cfg.nix.timeoutSec),
      jobs: cfg.nix.jobs,
    },
  };
}

const ms = (secs: number) => Math.round(secs * 1000);

/** The `fetch:` section's network keys in the units the network uses. */
export function networkSettings(cfg: RawConfig['fetch']): NetworkSettings {
  return {
    concurrency: cfg.concurrency,
    perHost: cfg.perHost,
    connectTimeoutMs: ms(cfg.connectTimeoutSec),
    idleTimeoutMs: ms(cfg.idleTimeoutSec),
    retries: cfg.retries,
    retryDelayMs: ms(cfg.retryDelaySec),
    maxBytes: Math.round(cfg.maxSizeMb * 2 ** 20),
  };
}

/** The keys of `o` whose value is not undefined (a flag not given leaves the config's key alone). */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The config's variants, narrowed to those named on the command line (an unknown name is a usage error). */
function chooseVariants(all: Record<string, VariantConfig>, named: string[] | undefined): Record<string, VariantConfig> {
  if (!named?.length) return all;
  const chosen: Record<string, VariantConfig> = {};
  for (const v of named) {
    if (!all[v]) {
      throw new FodderError(ErrorCode.USAGE, `unknown variant "${v}"; the config defines: ${Object.keys(all).join(', ')}`, { variant: v });
    }
    chosen[v] = all[v];
  }
  return chosen;
}

function checkNixpkgs(path: string, origin: string): void {
  // a package set is a directory (its mirror list and lib/minver.nix are found in it), as nixpkgs is
  const ok = existsSync(path) && statSync(path).isDirectory() && existsSync(join(path, 'default.nix'));
  if (!ok) {
    throw new FodderError(ErrorCode.NIXPKGS_NOT_FOUND, `nixpkgs not found at ${path} (from ${origin}): expected a directory with default.nix`, { path });
  }
}
