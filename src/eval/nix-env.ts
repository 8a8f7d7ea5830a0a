import { execa } from 'execa';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { FodderError, ErrorCode } from '../errors.js';
import { NIX_ENV, cleanNixMessage, nixStoreArgs } from './nix-run.js';
import type { Mirrors } from '../graph/fod.js';

/**
 * Fails clearly when Nix is not installed: `nix-instantiate` must be an executable file on PATH.
 * Looked up, not run, so the crawl's start does not wait for a process.
 */
export function ensureNix(): void {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, 'nix-instantiate'), constants.X_OK);
      return;
    } catch { /* not here */ }
  }
  throw new FodderError(ErrorCode.NIX_MISSING,
    'nix-instantiate not found on PATH: run `npm run quickstart` (installs Debian\'s nix-bin) or install Nix', {});
}

/** Evaluates a Nix expression to JSON (read-only). */
export async function evalJson(expr: string, store: string | null): Promise<unknown> {
  const r = await execa('nix-instantiate', ['--eval', '--strict', '--json', ...nixStoreArgs(store), '-E', expr], {
    reject: false, env: NIX_ENV, extendEnv: true,
  });
  if (r.exitCode !== 0) {
    throw new FodderError(ErrorCode.NIX_FAILED, cleanNixMessage(String(r.stderr)) || `nix-instantiate failed (${r.exitCode})`, { expr });
  }
  return JSON.parse(String(r.stdout));
}

/** The package set's mirror list (pkgs/build-support/fetchurl/mirrors.nix), or {} when it has none. */
export async function readMirrors(nixpkgs: string, store: string | null): Promise<Mirrors> {
  const file = join(nixpkgs, 'pkgs', 'build-support', 'fetchurl', 'mirrors.nix');
  if (!existsSync(file)) return {};
  const value = await evalJson(
    `let m = import ${JSON.stringify(file)}; in builtins.mapAttrs (n: v: if builtins.isList v then v else [ ]) m`, store);
  return value as Mirrors;
}

/** The package set for one system and variant, as the walker imports it (a Nix expression). */
function packageSetExpr(nixpkgs: string, system: string, config: Record<string, unknown>, configNix: string | null, overlays: string[]): string {
  return `import ${JSON.stringify(nixpkgs)} {
        system = ${JSON.stringify(system)};
        config = builtins.fromJSON ${JSON.stringify(JSON.stringify(config))} // (${configNix ?? '{ }'});
        overlays = map import (builtins.fromJSON ${JSON.stringify(JSON.stringify(overlays))});
      }`;
}

/**
 * The systems the package set cannot build for, each with Nix's message: its `stdenv` (which
 * every package's derivation needs) has no drvPath. An unknown system name fails there, in
 * nixpkgs' platform parsing or its bootstrap selection, as it would for every attribute. A set
 * without a `stdenv` passes. One Nix process per system, at once.
 */
export async function unloadableSystems(
  nixpkgs: string, systems: string[], config: Record<string, unknown>, configNix: string | null,
  overlays: string[], store: string | null,
): Promise<{ system: string; message: string }[]> {
  const failed = await Promise.all(systems.map(async (system) => {
    try {
      await evalJson(`builtins.seq ((${packageSetExpr(nixpkgs, system, config, configNix, overlays)}).stdenv.drvPath or null) true`, store);
      return null;
    } catch (err) {
      return { system, message: (err as Error).message };
    }
  }));
  return failed.filter((f) => f !== null);
}

/**
 * Which of `paths` exist in the package set for one system and variant. Evaluates only the
 * names along each path (tryEval'd), never the values themselves.
 */
export async function existingPaths(
  nixpkgs: string, system: string, config: Record<string, unknown>, configNix: string | null,
  overlays: string[], paths: string[][], store: string | null,
): Promise<boolean[]> {
  const expr = `
    let
      pkgs = ${packageSetExpr(nixpkgs, system, config, configNix, overlays)};
      has = v: path: if path == [ ] then true else
        let r = builtins.tryEval (builtins.isAttrs v && builtins.hasAttr (builtins.head path) v); in
        r.success && r.value && has (v.\${builtins.head path}) (builtins.tail path);
    in map (has pkgs) (builtins.fromJSON ${JSON.stringify(JSON.stringify(paths))})`;
  return (await evalJson(expr, store)) as boolean[];
}
