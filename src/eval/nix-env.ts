import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { FodderError, ErrorCode } from '../errors.js';
import { nixCommand } from '../config/nix-bin.js';
import { NIX_ENV, cleanNixMessage, nixStoreArgs } from './nix-run.js';
import { nixErrorHeadline } from '../graph/nix-error.js';
import type { Mirrors } from '../graph/fod.js';

/** The Nix a crawl runs: its version (`builtins.nixVersion`, as `nix-instantiate --version` says it) and command. */
export interface NixUsed {
  version: string;
  /** the nix-instantiate found on PATH */
  command: string;
}

const versionCheck = z.object({ version: z.string(), required: z.string().nullable(), older: z.boolean() });

/**
 * Fails clearly when Nix is missing (`nix-instantiate` must be an executable file on PATH, or in
 * the config's `nix.bin`) or older than the package set needs: its `lib/minver.nix`, when it has
 * one, compared with Nix's own `builtins.compareVersions`, as nixpkgs itself compares them.
 * Both are said before anything else happens (nixpkgs' own check would be an `abort` in the
 * middle of the crawl, one uncatchable error per attribute).
 */
export async function ensureNix(nixpkgs: string, store: string | null, signal?: AbortSignal): Promise<NixUsed> {
  const command = nixCommand('nix-instantiate');
  if (command === null) {
    throw new FodderError(
      ErrorCode.NIX_MISSING,
      "nix-instantiate not found on PATH: run `npm run quickstart` (installs Debian's nix-bin), install Nix, or name its directory in the config (nix.bin)",
      {},
    );
  }
  const minverFile = join(nixpkgs, 'lib', 'minver.nix');
  const minver = existsSync(minverFile) ? minverFile : null;
  const { version, required, older } = versionCheck.parse(
    await evalJson(
      minver === null
        ? '{ version = builtins.nixVersion; required = null; older = false; }'
        : `let required = import ${JSON.stringify(minver)}; in
       { version = builtins.nixVersion; inherit required; older = builtins.compareVersions builtins.nixVersion required < 0; }`,
      store,
      signal,
    ),
  );
  if (older) {
    throw new FodderError(
      ErrorCode.NIX_TOO_OLD,
      `Nix ${version} (${command}) is older than ${required}, the version ${minver} requires: use a newer Nix (config key nix.bin names its directory)`,
      { version, required, file: minver, command },
    );
  }
  return { version, command };
}

/** Evaluates a Nix expression to JSON (read-only); `signal` ends Nix at once (a crawl stopped by SIGINT or SIGTERM). */
export async function evalJson(expr: string, store: string | null, signal?: AbortSignal): Promise<unknown> {
  const r = await execa('nix-instantiate', ['--eval', '--strict', '--json', ...nixStoreArgs(store), '-E', expr], {
    reject: false,
    env: NIX_ENV,
    extendEnv: true,
    cancelSignal: signal,
  });
  if (r.isCanceled) throw new FodderError(ErrorCode.INTERRUPTED, `stopped by ${String(signal?.reason)}`, { expr });
  if (r.exitCode !== 0) {
    // one line, what failed (Nix 2.26 puts its frames before it); the whole text in the fields
    const said = cleanNixMessage(String(r.stderr));
    throw new FodderError(ErrorCode.NIX_FAILED, said ? nixErrorHeadline(said) : `nix-instantiate failed (${r.exitCode})`, { expr, nix: said });
  }
  return JSON.parse(String(r.stdout));
}

/** The package set's mirror list (pkgs/build-support/fetchurl/mirrors.nix), or {} when it has none. */
export async function readMirrors(nixpkgs: string, store: string | null, signal?: AbortSignal): Promise<Mirrors> {
  const file = join(nixpkgs, 'pkgs', 'build-support', 'fetchurl', 'mirrors.nix');
  if (!existsSync(file)) return {};
  const value = await evalJson(`let m = import ${JSON.stringify(file)}; in builtins.mapAttrs (n: v: if builtins.isList v then v else [ ]) m`, store, signal);
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
  nixpkgs: string,
  systems: string[],
  config: Record<string, unknown>,
  configNix: string | null,
  overlays: string[],
  store: string | null,
  signal?: AbortSignal,
): Promise<{ system: string; message: string }[]> {
  const failed = await Promise.all(
    systems.map(async (system) => {
      try {
        await evalJson(`builtins.seq ((${packageSetExpr(nixpkgs, system, config, configNix, overlays)}).stdenv.drvPath or null) true`, store, signal);
        return null;
      } catch (err) {
        if (signal?.aborted) throw err;
        return { system, message: (err as Error).message };
      }
    }),
  );
  return failed.filter((f) => f !== null);
}

/**
 * Which of `paths` exist in the package set for one system and variant. Evaluates only the
 * names along each path (tryEval'd), never the values themselves.
 */
export async function existingPaths(
  nixpkgs: string,
  system: string,
  config: Record<string, unknown>,
  configNix: string | null,
  overlays: string[],
  paths: string[][],
  store: string | null,
  signal?: AbortSignal,
): Promise<boolean[]> {
  const expr = `
    let
      pkgs = ${packageSetExpr(nixpkgs, system, config, configNix, overlays)};
      has = v: path: if path == [ ] then true else
        let r = builtins.tryEval (builtins.isAttrs v && builtins.hasAttr (builtins.head path) v); in
        r.success && r.value && has (v.\${builtins.head path}) (builtins.tail path);
    in map (has pkgs) (builtins.fromJSON ${JSON.stringify(JSON.stringify(paths))})`;
  return (await evalJson(expr, store, signal)) as boolean[];
}
