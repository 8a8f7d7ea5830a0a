import { availableParallelism, cpus, totalmem } from 'node:os';
import { createRequire } from 'node:module';
import type { Cron } from 'croner';
import { z } from 'zod';
import { DEFAULT_EXCLUDE_ANYWHERE, DEFAULT_EXCLUDE_TOP, DEFAULT_SYSTEMS, DEFAULT_VARIANTS } from './defaults.js';

const name = z.string().min(1);

/**
 * Bounds of the values that can hurt the machine or a server: every setting that decides how
 * many processes, connections, bytes or levels fodder takes on is capped here, the one place
 * settings are decided (config file and command line alike).
 */
export const BOUNDS = {
  /** worker threads (each with a Nix process): more than the cores only contend, and each Nix may take `limits.memoryMb` */
  workers: Math.max(2, availableParallelism()),
  /** a Nix process cannot usefully hold more than the machine's memory */
  memoryMb: Math.max(1024, Math.floor(totalmem() / 2 ** 20)),
  maxDepth: 64,
  shardSize: 10_000,
  shardTimeoutSec: 86_400,
  /** each costs ~8 KiB of the memory file system per worker */
  scratchDrvs: 1_000_000,
  concurrency: 256,
  perHost: 64,
  retries: 20,
  retryDelaySec: 600,
  timeoutSec: 86_400,
  /** 1 TiB */
  maxSizeMb: 1_048_576,
  nixJobs: Math.max(2, availableParallelism()),
  nixTimeoutSec: 7 * 86_400,
  keep: 1000,
} as const;

/** The message of a bound, saying why it is there. */
const atMost = (max: number, why: string) => `must be at most ${max} (${why})`;
/** `z.number().int()` between 1 and `max`. */
const count = (max: number, why: string) => z.number().int().min(1, 'must be at least 1').max(max, atMost(max, why));

/** A Nix system name: `cpu-kernel` or a longer double (`x86_64-linux`, `aarch64-darwin`, `armv7l-linux`). */
export const systemSchema = z.string().regex(/^[A-Za-z0-9_]+(-[A-Za-z0-9_.]+)+$/, 'must be a Nix system name like x86_64-linux');

/** A config variant: plain config values, plus an optional Nix expression merged over them. */
export const variantSchema = z.object({ config: z.record(z.unknown()).default({}), nix: z.string().nullable().default(null) }).strict();

export const crawlLimitsSchema = z
  .object({
    /** wall-clock cap of one attribute's evaluation; past it the attribute is a `timeout` error */
    shardTimeoutSec: z.number().positive().max(BOUNDS.shardTimeoutSec, atMost(BOUNDS.shardTimeoutSec, 'a day')).default(900),
    /** resident memory cap of one evaluator (a `nix repl`), MiB: past it the evaluator restarts */
    memoryMb: count(BOUNDS.memoryMb, "this machine's memory").default(4096),
    /**
     * without a kept store: a worker empties its drv store in the scratch directory once it has
     * read this many .drv files since it last did (each costs about 8 KiB there)
     */
    scratchDrvs: count(BOUNDS.scratchDrvs, 'about 8 GiB of memory per worker').default(200_000),
  })
  .strict();

/** `fetch.cache`: the binary cache of FOD outputs in `<mirror>/cache`. */
export const cacheSchema = z
  .object({
    /** NAR compression: none (the default: most sources are compressed already), xz or zstd */
    compression: z.enum(['none', 'xz', 'zstd']).default('none'),
    /** xz (0-9) or zstd (1-19) level */
    level: z.number().int().min(0).max(19).optional(),
    /** a file holding a Nix secret key (`name:base64`); absent: narinfos are not signed */
    secretKeyFile: z.string().min(1).optional(),
    /** `Priority` in nix-cache-info (lower is preferred; cache.nixos.org is 40) */
    priority: z.number().int().min(0).default(30),
    /**
     * flat sources get a real NAR copy in the cache too, for a cache read without `fodder serve`
     * (file://, a static server); `fodder serve` makes their NARs from tarballs/ (cache/flat/), so
     * it needs none, and the copy costs a second file on disk: off unless asked for
     */
    flat: z.boolean().default(false),
  })
  .strict();

/** `fetch.nix`: the fallback that realises a FOD's .drv with the user's Nix. */
export const nixFallbackSchema = z
  .object({
    /** on for every run (otherwise only with `--kind nix`) */
    enabled: z.boolean().default(false),
    /** the store that builds (`--store`); null: the user's default store */
    store: z.string().min(1).nullable().default(null),
    /** `--option NAME VALUE` for every Nix call (substituters, extra-sandbox-paths, ...) */
    options: z.record(z.string()).default({}),
    /** one realisation is killed after this long */
    timeoutSec: z.number().positive().max(BOUNDS.nixTimeoutSec, atMost(BOUNDS.nixTimeoutSec, 'a week')).default(7200),
    /** realisations at once */
    jobs: count(BOUNDS.nixJobs, "this machine's cores").default(2),
  })
  .strict();

export const fetchSchema = z
  .object({
    mirror: z.string().min(1).default('data/mirror'),
    kinds: z.array(name).optional(),
    concurrency: count(BOUNDS.concurrency, 'open connections, clones and unpackings at once').default(16),
    perHost: count(BOUNDS.perHost, 'connections one server is asked to take at once').default(4),
    connectTimeoutSec: z.number().positive().max(BOUNDS.timeoutSec, atMost(BOUNDS.timeoutSec, 'a day')).default(20),
    idleTimeoutSec: z.number().positive().max(BOUNDS.timeoutSec, atMost(BOUNDS.timeoutSec, 'a day')).default(60),
    retries: z.number().int().min(0).max(BOUNDS.retries, atMost(BOUNDS.retries, 'extra tries of one URL')).default(3),
    retryDelaySec: z.number().min(0).max(BOUNDS.retryDelaySec, atMost(BOUNDS.retryDelaySec, 'ten minutes')).default(1),
    maxSizeMb: z.number().positive().max(BOUNDS.maxSizeMb, atMost(BOUNDS.maxSizeMb, '1 TiB')).default(8192),
    cache: cacheSchema.default({}),
    nix: nixFallbackSchema.default({}),
  })
  .strict();

/** `HOST:PORT` (a name, an IPv4 address or a bracketed IPv6 one; port 0: any free port). */
export const listenSchema = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/, 'must be HOST:PORT, e.g. 127.0.0.1:7480')
  .refine((s) => Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, 'the port must be at most 65535');

/** Whether `pattern` is a cron pattern (five fields, or six with seconds first, or a nickname like @daily). */
function isCron(pattern: string): boolean {
  // croner loaded when a pattern is checked, not by every command at start-up
  const { Cron: CronClass } = createRequire(import.meta.url)('croner') as { Cron: typeof Cron };
  try {
    new CronClass(pattern, { paused: true }).stop();
    return true;
  } catch {
    return false;
  }
}

/** `service`: what `fodder serve` listens on, when it runs its jobs and who may start one. */
export const serviceSchema = z
  .object({
    /** where the service listens; never all addresses unless asked */
    listen: listenSchema.default('127.0.0.1:7480'),
    /** when a job (crawl, fetch, report) runs, in cron syntax; null: only on request */
    schedule: z.string().min(1).refine(isCron, 'must be a cron pattern, e.g. "0 3 * * *"').nullable().default('0 3 * * *'),
    /** a file holding the token `POST /api/jobs` needs (`Authorization: Bearer TOKEN`); null: no job is started on request */
    tokenFile: z.string().min(1).nullable().default(null),
    /**
     * the package set as a git branch, fetched (into `nixpkgs-git/` beside the database) before
     * each crawl, instead of the top-level `nixpkgs` path; null: that path, as it is
     */
    nixpkgs: z
      .object({
        git: z.string().min(1),
        branch: z
          .string()
          .min(1)
          .regex(/^(?!-)[^\s:~^?*[\\]+$/, 'must be a git branch name')
          .default('master'),
      })
      .strict()
      .nullable()
      .default(null),
    /**
     * after each job, `fodder gc` keeps the mirror objects of the newest this many revisions'
     * crawls and removes the rest; null: nothing is removed
     */
    keep: count(BOUNDS.keep, 'crawls of the package set kept').nullable().default(null),
  })
  .strict();

/** `bundle`: carrying a mirror's objects to a mirror off the network (docs/offgrid.md). */
export const bundleSchema = z
  .object({
    /**
     * public keys (`name:base64`, as `nix-store --generate-binary-cache-key` writes them) whose
     * signatures fodder trusts: a manifest given to `bundle create --since` and every narinfo
     * `bundle import` admits must carry a valid signature by one of them; empty: none is checked
     */
    trustedKeys: z.array(z.string().regex(/^[^:\s]+:[A-Za-z0-9+/]{43}=$/, 'must be a public key, name:base64')).default([]),
  })
  .strict();

/** `nix`: which Nix fodder runs. */
export const nixSchema = z
  .object({
    /** the directory holding the Nix commands (`nix-instantiate`, `nix-store`, `nix`); null: those on PATH */
    bin: z.string().min(1).nullable().default(null),
  })
  .strict();

/**
 * The config file, and the one place every setting's default is written (src/config/settings.ts
 * resolves them; docs/config.md lists them, and test/config-docs.test.ts holds the two together).
 * A relative path is relative to the config file's directory when the file sets it; the default
 * `db` is relative to the current directory, the default `nixpkgs` to fodder's own directory.
 */
export const configSchema = z
  .object({
    /** the package set (a directory with default.nix); default: the bundled test package set */
    nixpkgs: z.string().min(1).default('test/fixtures/nixpkgs'),
    systems: z.array(systemSchema).min(1).default(DEFAULT_SYSTEMS),
    variants: z.record(variantSchema).default(DEFAULT_VARIANTS),
    overlays: z.array(z.string().min(1)).default([]),
    exhaustive: z.boolean().default(false),
    maxDepth: count(BOUNDS.maxDepth, 'levels of attribute sets').default(8),
    exclude: z
      .object({ top: z.array(name).default(DEFAULT_EXCLUDE_TOP), anywhere: z.array(name).default(DEFAULT_EXCLUDE_ANYWHERE) })
      .strict()
      .default({}),
    /** worker threads: default the machine's cores, at most 8 */
    workers: count(BOUNDS.workers, "this machine's cores").default(Math.max(1, Math.min(cpus().length, 8))),
    shardSize: count(BOUNDS.shardSize, 'attribute paths one Nix process evaluates').default(1000),
    explainErrors: z.boolean().default(true),
    /** a directory to keep the crawl's .drv files in (a Nix binary-cache store); null: they are kept only in the database */
    store: z.string().min(1).nullable().default(null),
    db: z.string().min(1).default('data/fodder.db'),
    limits: crawlLimitsSchema.default({}),
    fetch: fetchSchema.default({}),
    bundle: bundleSchema.default({}),
    nix: nixSchema.default({}),
    service: serviceSchema.default({}),
  })
  .strict();

export type RawConfig = z.infer<typeof configSchema>;
export type VariantConfig = z.infer<typeof variantSchema>;
