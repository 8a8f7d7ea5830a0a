import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Piscina } from 'piscina';
import { ErrorCode, FodderError } from '../errors.js';

/** The repository root (works from src/ under vitest and from dist/src/ when built). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'nix', 'evaluator.nix'))) return dir;
    dir = resolve(dir, '..');
  }
  throw new FodderError(
    ErrorCode.INSTALL_BROKEN,
    `cannot locate fodder's own files (nix/evaluator.nix) above ${fileURLToPath(import.meta.url)}: reinstall it`,
    {},
  );
}

/**
 * A built entry point under workers/ (`eval-worker.js`, `nix-spawner.js`): beside the running
 * code when it is the build itself, else in the build under the package root (under vitest).
 */
export function workerScript(name: string): string {
  const beside = fileURLToPath(new URL(`../../workers/${name}`, import.meta.url));
  if (existsSync(beside)) return beside;
  const built = join(packageRoot(), 'dist', 'workers', name);
  if (existsSync(built)) return built;
  throw new FodderError(ErrorCode.INSTALL_BROKEN, `not built: ${built} is missing (run npm run build)`, { file: built });
}

/**
 * piscina's pool class, loaded when a pool is made: the commands that start no thread (a bundle's
 * plan, its tar writer, the queries) do not pay its 20 ms at start-up.
 */
export const piscina = (): typeof Piscina => (createRequire(import.meta.url)('piscina') as { Piscina: typeof Piscina }).Piscina;

export const DEFAULT_SYSTEMS = ['x86_64-linux', 'aarch64-linux', 'x86_64-darwin', 'aarch64-darwin'];

/** nixpkgs' own "attrpaths superset" exclusions: never descended into, at top level. */
export const DEFAULT_EXCLUDE_TOP = [
  'buildPackages',
  'targetPackages',
  'pkgsBuildBuild',
  'pkgsBuildHost',
  'pkgsBuildTarget',
  'pkgsHostHost',
  'pkgsHostTarget',
  'pkgsTargetTarget',
  '__splicedPackages',
  'pkgsCross',
  'pkgsStatic',
  'pkgsMusl',
  'pkgsLLVM',
  'pkgsi686Linux',
  'pkgsx86_64Darwin',
  'pkgsLinux',
  'pkgsExtraHardening',
];

/** ...and at any depth. */
export const DEFAULT_EXCLUDE_ANYWHERE = [
  'lib',
  'pkgs',
  'override',
  'overrideDerivation',
  'overrideScope',
  "overrideScope'",
  'callPackage',
  'newScope',
  'mkDerivation',
  '__functor',
  'type',
  'recurseForDerivations',
  'packages',
  'buildPackages',
];

export const DEFAULT_VARIANTS = {
  default: { config: {}, nix: null as string | null },
  permissive: {
    config: { allowUnfree: true, allowBroken: true, allowUnsupportedSystem: true },
    // a function cannot be written in YAML or JSON: this part is a Nix expression
    nix: '{ allowInsecurePredicate = _: true; }' as string | null,
  },
};
