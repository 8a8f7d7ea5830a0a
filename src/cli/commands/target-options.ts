/**
 * The target options every target-taking command shares (`fodder sources`, `--missing`,
 * `fodder bundle create`): ATTR read from the crawls, or a target evaluated now. Checked here
 * once; the FODs come from `targetFods` (src/query/targets.ts), the one resolver.
 */
import type { Command } from 'commander';
import { targetSettings } from '../../config/settings.js';
import { openDb, type Db } from '../../db/open.js';
import type { OnDemandOptions, TargetSpec } from '../../eval/on-demand.js';
import { ErrorCode, FodderError } from '../../errors.js';
import { targetFods, type Target, type TargetQuery } from '../../query/targets.js';
import { abortOnSignals, collect, dbPath, positiveInt } from '../common.js';

export interface TargetFlags {
  expr?: string;
  file?: string;
  nixosConfig?: string;
  flake?: string;
  nixpkgs?: string;
  config?: string;
  system?: string[];
  variant?: string[];
  crawl?: number;
  kind?: string;
  db?: string;
}

export const CRAWL_OPTION = ['--crawl <n>', 'read this crawl (whatever its status) instead of the latest finished one'] as const;

/** Registers the target options; `config` says what --config is for in this command. */
export function addTargetOptions(cmd: Command, config: string): Command {
  return cmd
    .option('--expr <expr>', 'a Nix expression yielding a derivation, a list or a set of them (pkgs and system in scope)')
    .option('--file <file>', 'a Nix file yielding the same (a function is called with the pkgs and system it names)')
    .option('--nixos-config <file>', 'the system a NixOS configuration builds (PATH/nixos of --nixpkgs)')
    .option('--flake <ref#attr>', "a flake's attribute (packages.<system>.ATTR, legacyPackages.<system>.ATTR or ATTR)")
    .option('--nixpkgs <path>', 'the package set of --expr, --file and --nixos-config')
    .option('--config <file>', config)
    .option('--system <system>', 'this system (repeatable, or comma-separated)', collect('--system'))
    .option('--variant <name>', 'this config variant (repeatable, or comma-separated)', collect('--variant'))
    .option(...CRAWL_OPTION, positiveInt('--crawl'))
    .option('--db <file>');
}

export interface ChooseOptions {
  /** the command, for messages */
  command: string;
  /** no target at all means every FOD of the crawls (`bundle create`); else it is an error */
  allowNone: boolean;
  /** --config also holds this command's own settings (the mirror, keys), so it goes with ATTR too */
  configForAll: boolean;
  /** --db also names where this command's own records are (--missing: the sizes fetches recorded), so it goes with a target evaluated now too */
  dbForAll?: boolean;
}

/**
 * The on-demand target the flags name, null for ATTR, or undefined for none (when allowed);
 * refuses none (when not), more than one, and options that do not apply.
 */
export function chosenTarget(attr: string | undefined, flags: TargetFlags, o: ChooseOptions): TargetSpec | null | undefined {
  const given: [string, TargetSpec | null][] = [];
  if (attr !== undefined) given.push(['ATTR', null]);
  if (flags.expr !== undefined) given.push(['--expr', { kind: 'expr', expr: flags.expr }]);
  if (flags.file !== undefined) given.push(['--file', { kind: 'file', file: flags.file }]);
  if (flags.nixosConfig !== undefined) given.push(['--nixos-config', { kind: 'nixos', configuration: flags.nixosConfig }]);
  if (flags.flake !== undefined) {
    const hash = flags.flake.lastIndexOf('#');
    if (hash <= 0 || hash === flags.flake.length - 1) {
      throw new FodderError(ErrorCode.USAGE, `--flake: "${flags.flake}" is not REF#ATTR (a flake reference, #, an attribute path)`, { option: '--flake' });
    }
    given.push(['--flake', { kind: 'flake', ref: flags.flake.slice(0, hash), attr: flags.flake.slice(hash + 1) }]);
  }
  const usage = (message: string) => new FodderError(ErrorCode.USAGE, message, {});
  if (given.length > 1) throw usage(`${o.command}: one target at a time, got ${given.map((g) => g[0]).join(' and ')}`);
  if (given.length === 0) {
    if (!o.allowNone) throw usage(`${o.command}: name a target: ATTR, --expr, --file, --nixos-config or --flake`);
    if (flags.nixpkgs !== undefined) throw usage(`--nixpkgs does not apply without a target evaluated now: the FODs are read from the crawls`);
    return undefined;
  }
  const [name, target] = given[0];
  const refuse = (option: string, why: string) => {
    throw usage(`${option} does not apply to ${name}: ${why}`);
  };
  if (flags.kind !== undefined) refuse('--kind', 'it narrows every FOD of the crawls, given no target');
  if (target === null) {
    if (flags.nixpkgs !== undefined) refuse('--nixpkgs', 'ATTR is read from the crawls in the database');
    if (flags.config !== undefined && !o.configForAll) refuse('--config', 'ATTR is read from the crawls in the database');
  } else {
    if (flags.crawl !== undefined) refuse('--crawl', 'it is evaluated now, not read from a crawl');
    if (flags.db !== undefined && !o.dbForAll) refuse('--db', 'it is evaluated now, not read from a crawl');
    if ((target.kind === 'nixos' || target.kind === 'flake') && flags.variant?.length) {
      refuse('--variant', target.kind === 'nixos' ? "the configuration's nixpkgs.config decides" : 'the flake decides its package set');
    }
  }
  return target;
}

/** How a target is evaluated now: the crawl's settings (variants, overlays, Nix, limits) for the systems and variants asked. */
export function onDemandOptions(flags: TargetFlags, signal: AbortSignal): OnDemandOptions {
  const config = targetSettings({
    configFile: flags.config,
    flags: { nixpkgs: flags.nixpkgs, systems: flags.system, variants: flags.variant },
    need: { nixpkgs: true },
  });
  return {
    nixpkgs: config.nixpkgs,
    overlays: config.overlays,
    systems: config.systems,
    variants: config.variants,
    timeoutMs: config.limits.shardTimeoutSec * 1000,
    memoryMb: config.limits.memoryMb,
    signal,
  };
}

/**
 * The FODs of the target the command line names, with SIGINT/SIGTERM ending an evaluation.
 * `db` is the database file (the flag's, or the settings' for commands with a config).
 */
export async function resolveTarget(attr: string | undefined, flags: TargetFlags, o: ChooseOptions & { db?: string }): Promise<Target> {
  const spec = chosenTarget(attr, flags, o);
  const stop = new AbortController();
  const release = abortOnSignals(stop);
  let db: Db | null = null;
  const query: TargetQuery =
    spec === undefined || spec === null
      ? { from: 'db', attr, systems: flags.system ?? [], variants: flags.variant ?? [], crawl: flags.crawl, kind: flags.kind }
      : { from: 'eval', spec, options: onDemandOptions(flags, stop.signal) };
  try {
    return await targetFods(() => (db ??= openDb(o.db ?? dbPath(flags.db), { readonly: true })), query);
  } finally {
    release();
    (db as Db | null)?.close();
  }
}
