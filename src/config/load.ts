import { readFileSync, existsSync, statSync } from 'node:fs';
import { dirname, resolve, join } from 'node:path';
import { cpus } from 'node:os';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { ZodIssue, ZodTypeAny, output } from 'zod';
import { FodderError, ErrorCode } from '../errors.js';
import { configSchema, systemSchema, type RawConfig, type VariantConfig } from './schema.js';
import { selectNix } from './nix-bin.js';
import {
  DEFAULT_EXCLUDE_ANYWHERE, DEFAULT_EXCLUDE_TOP, DEFAULT_SYSTEMS, DEFAULT_VARIANTS, packageRoot,
} from './defaults.js';

/** The validated, resolved configuration every stage reads. Paths are absolute. */
export interface Config {
  file: string | null;
  nixpkgs: string;
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
  store: string | null;
  db: string;
  limits: RawConfig['limits'];
  fetch: RawConfig['fetch'] & { mirror: string };
  /** the config's `nix.bin` (first on PATH from now on), or null: the Nix commands on PATH */
  nixBin: string | null;
}

function describeIssue(file: string, issue: ZodIssue): string {
  const key = issue.path.length ? issue.path.join('.') : '(top level)';
  if (issue.code === 'unrecognized_keys') {
    const where = issue.path.length ? ` in ${issue.path.join('.')}` : '';
    return `${file}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}${where}`;
  }
  if (issue.code === 'invalid_type') {
    return `${file}: key "${key}": expected ${issue.expected}, got ${issue.received}`;
  }
  return `${file}: key "${key}": ${issue.message}`;
}

/** Reads and validates a YAML config file; every problem names the file and the key. */
export function readConfigFile(file: string): RawConfig {
  const path = resolve(file);
  if (!existsSync(path)) {
    throw new FodderError(ErrorCode.CONFIG_NOT_FOUND, `config file not found: ${path}`, { file: path });
  }
  let data: unknown;
  try {
    data = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    const detail = err instanceof YAMLParseError ? err.message.split('\n')[0] : (err as Error).message;
    throw new FodderError(ErrorCode.CONFIG_INVALID, `${path}: not valid YAML: ${detail}`, { file: path });
  }
  return validateConfig(data ?? {}, path);
}

/** Validates already-parsed config data. */
export function validateConfig(data: unknown, origin: string): RawConfig {
  const result = configSchema.safeParse(data);
  if (!result.success) {
    const lines = result.error.issues.map((i) => describeIssue(origin, i));
    throw new FodderError(ErrorCode.CONFIG_INVALID, lines.join('\n'), { file: origin, issues: result.error.issues });
  }
  return result.data;
}

/**
 * A command-line value checked against the schema of the setting it sets (the same bounds as
 * the config file's); a bad one is a usage error naming the option.
 */
export function optionValue<S extends ZodTypeAny>(option: string, schema: S, value: unknown): output<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const shown = typeof value === 'number' && Number.isNaN(value) ? 'not a number' : JSON.stringify(value);
    throw new FodderError(ErrorCode.USAGE, `${option}: ${result.error.issues[0].message} (got ${shown})`, { option, value });
  }
  return result.data as output<S>;
}

/** A numeric command-line value (given as text) checked against its setting's schema. */
export function numericOption<S extends ZodTypeAny>(option: string, schema: S, text: string | number | undefined): output<S> | undefined {
  if (text === undefined) return undefined;
  const n = typeof text === 'number' ? text : text.trim() === '' ? NaN : Number(text);
  if (Number.isNaN(n)) {
    throw new FodderError(ErrorCode.USAGE, `${option}: Expected number, got "${text}"`, { option, value: text });
  }
  return optionValue(option, schema, n);
}

export interface CliOverrides {
  nixpkgs?: string;
  systems?: string[];
  variants?: string[];
  exhaustive?: boolean;
  workers?: number;
  store?: string;
  db?: string;
  mirror?: string;
}

/** Loads the config file (if any), applies command-line narrowing, resolves paths. */
export function loadConfig(file: string | undefined, cli: CliOverrides = {}): Config {
  const raw = file ? readConfigFile(file) : validateConfig({}, '<defaults>');
  const base = file ? dirname(resolve(file)) : process.cwd();
  const root = packageRoot();
  const nixBin = selectNix(raw, base, file ? resolve(file) : '<defaults>');

  const nixpkgs = cli.nixpkgs
    ? resolve(cli.nixpkgs)
    : raw.nixpkgs ? resolve(base, raw.nixpkgs) : join(root, 'test', 'fixtures', 'nixpkgs');
  checkNixpkgs(nixpkgs, cli.nixpkgs ? '--nixpkgs' : raw.nixpkgs ? `${file}: key "nixpkgs"` : 'the bundled package set');

  const allSystems = raw.systems ?? DEFAULT_SYSTEMS;
  const systems = cli.systems?.length ? cli.systems.map((s) => optionValue('--system', systemSchema, s)) : allSystems;

  const allVariants: Record<string, VariantConfig> = raw.variants ?? DEFAULT_VARIANTS;
  let variants = allVariants;
  if (cli.variants?.length) {
    variants = {};
    for (const v of cli.variants) {
      if (!allVariants[v]) {
        throw new FodderError(ErrorCode.USAGE,
          `unknown variant "${v}"; the config defines: ${Object.keys(allVariants).join(', ')}`, { variant: v });
      }
      variants[v] = allVariants[v];
    }
  }

  // default: no store kept; the .drv files live in the crawl's scratch directory and their texts in the database
  const storeRaw = cli.store ?? raw.store ?? null;
  const storeBase = cli.store ? process.cwd() : base;
  return {
    file: file ? resolve(file) : null,
    nixpkgs,
    systems,
    variants,
    overlays: raw.overlays.map((o) => resolve(base, o)),
    exhaustive: cli.exhaustive ?? raw.exhaustive,
    maxDepth: raw.maxDepth,
    excludeTop: raw.exclude.top ?? DEFAULT_EXCLUDE_TOP,
    excludeAnywhere: raw.exclude.anywhere ?? DEFAULT_EXCLUDE_ANYWHERE,
    workers: numericOption('--workers', configSchema.shape.workers, cli.workers) ?? raw.workers ?? Math.max(1, Math.min(cpus().length, 8)),
    shardSize: raw.shardSize,
    explainErrors: raw.explainErrors,
    store: storeRaw === null ? null : resolve(storeBase, storeRaw),
    db: cli.db ? resolve(cli.db) : raw.db ? resolve(base, raw.db) : resolve('data/fodder.db'),
    limits: raw.limits,
    fetch: { ...raw.fetch, mirror: cli.mirror ? resolve(cli.mirror) : resolve(base, raw.fetch.mirror) },
    nixBin,
  };
}

function checkNixpkgs(path: string, origin: string): void {
  // a package set is a directory (its mirror list and lib/minver.nix are found in it), as nixpkgs is
  const ok = existsSync(path) && statSync(path).isDirectory() && existsSync(join(path, 'default.nix'));
  if (!ok) {
    throw new FodderError(ErrorCode.NIXPKGS_NOT_FOUND,
      `nixpkgs not found at ${path} (from ${origin}): expected a directory with default.nix`, { path });
  }
}
