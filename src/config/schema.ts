import { z } from 'zod';

const name = z.string().min(1);

/** A config variant: plain config values, plus an optional Nix expression merged over them. */
export const variantSchema = z.object({
  config: z.record(z.unknown()).default({}),
  nix: z.string().nullable().default(null),
}).strict();

export const crawlLimitsSchema = z.object({
  /** wall-clock cap of one attribute's evaluation; past it the attribute is a `timeout` error */
  shardTimeoutSec: z.number().positive().default(900),
  /** resident memory cap of one evaluator (a `nix repl`), MiB: past it the evaluator restarts */
  memoryMb: z.number().int().positive().default(4096),
  /**
   * without a kept store: a worker empties its drv store in the scratch directory once it has
   * read this many .drv files since it last did (each costs about 8 KiB there)
   */
  scratchDrvs: z.number().int().positive().default(200_000),
}).strict();

/** `fetch.cache`: the binary cache of FOD outputs in `<mirror>/cache`. */
export const cacheSchema = z.object({
  /** NAR compression: none (the default: most sources are compressed already), xz or zstd */
  compression: z.enum(['none', 'xz', 'zstd']).default('none'),
  /** xz (0-9) or zstd (1-19) level */
  level: z.number().int().min(0).max(19).optional(),
  /** a file holding a Nix secret key (`name:base64`); absent: narinfos are not signed */
  secretKeyFile: z.string().min(1).optional(),
  /** `Priority` in nix-cache-info (lower is preferred; cache.nixos.org is 40) */
  priority: z.number().int().min(0).default(30),
  /**
   * flat sources (already in tarballs/, which Nix uses as hashed-mirrors) get a cache entry too,
   * so Nix substitutes them with no hashed-mirrors setting; costs a second copy of each file (a
   * NAR) on disk, so it is off unless asked for
   */
  flat: z.boolean().default(false),
}).strict();

/** `fetch.nix`: the fallback that realises a FOD's .drv with the user's Nix. */
export const nixFallbackSchema = z.object({
  /** on for every run (otherwise only with `--kind nix`) */
  enabled: z.boolean().default(false),
  /** the store that builds (`--store`); null: the user's default store */
  store: z.string().min(1).nullable().default(null),
  /** `--option NAME VALUE` for every Nix call (substituters, extra-sandbox-paths, ...) */
  options: z.record(z.string()).default({}),
  /** one realisation is killed after this long */
  timeoutSec: z.number().positive().default(7200),
  /** realisations at once */
  jobs: z.number().int().positive().default(2),
}).strict();

export const fetchSchema = z.object({
  mirror: z.string().min(1).default('data/mirror'),
  kinds: z.array(name).optional(),
  concurrency: z.number().int().positive().default(16),
  perHost: z.number().int().positive().default(4),
  connectTimeoutSec: z.number().positive().default(20),
  idleTimeoutSec: z.number().positive().default(60),
  retries: z.number().int().min(0).default(3),
  retryDelaySec: z.number().min(0).default(1),
  maxSizeMb: z.number().positive().default(8192),
  cache: cacheSchema.default({}),
  nix: nixFallbackSchema.default({}),
}).strict();

/** `nix`: which Nix fodder runs. */
export const nixSchema = z.object({
  /** the directory holding the Nix commands (`nix-instantiate`, `nix-store`, `nix`); null: those on PATH */
  bin: z.string().min(1).nullable().default(null),
}).strict();

export const configSchema = z.object({
  /** path to the package set (a directory with default.nix), relative to the config file */
  nixpkgs: z.string().min(1).optional(),
  systems: z.array(name).min(1).optional(),
  variants: z.record(variantSchema).optional(),
  overlays: z.array(z.string().min(1)).default([]),
  exhaustive: z.boolean().default(false),
  maxDepth: z.number().int().positive().default(8),
  exclude: z.object({
    top: z.array(name).optional(),
    anywhere: z.array(name).optional(),
  }).strict().default({}),
  workers: z.number().int().positive().optional(),
  shardSize: z.number().int().positive().default(1000),
  explainErrors: z.boolean().default(true),
  /** a directory to keep the crawl's .drv files in (a Nix binary-cache store); null or absent: they are kept only in the database */
  store: z.string().min(1).nullable().optional(),
  db: z.string().min(1).optional(),
  limits: crawlLimitsSchema.default({}),
  fetch: fetchSchema.default({}),
  nix: nixSchema.default({}),
}).strict();

export type RawConfig = z.infer<typeof configSchema>;
export type VariantConfig = z.infer<typeof variantSchema>;
