import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SyntheticShape {
  /** nested package sets under the top level */
  sets: number;
  /** packages per set */
  perSet: number;
}

/**
 * Writes a nixpkgs-shaped synthetic package set: `sets` recursed sets of `perSet` packages,
 * each package with its own source FOD, every second one a patch FOD, two dependencies inside
 * its set and a shared bootstrap chain. Hashes are real sha256 values computed by Nix.
 */
export function writeSyntheticSet(dir: string, shape: SyntheticShape): { attrs: number; fods: number } {
  mkdirSync(join(dir, 'pkgs', 'build-support', 'fetchurl'), { recursive: true });
  writeFileSync(join(dir, 'pkgs', 'build-support', 'fetchurl', 'mirrors.nix'), '{ gnu = [ "http://127.0.0.1:9/gnu/" "http://127.0.0.1:10/gnu/" ]; }\n');
  writeFileSync(
    join(dir, 'default.nix'),
    `
{ system ? builtins.currentSystem, config ? { }, overlays ? [ ], ... }:
let
  fetchurl = { name, url }: derivation {
    inherit name system url;
    urls = url;
    builder = "builtin:fetchurl";
    outputHash = builtins.hashString "sha256" name;
    outputHashAlgo = "sha256";
    outputHashMode = "flat";
  };
  boot0 = fetchurl { name = "bootstrap-tools.tar.xz"; url = "mirror://gnu/bootstrap-tools.tar.xz"; };
  stage = n: prev: derivation { name = "stage\${toString n}"; inherit system; builder = "/bin/sh"; args = [ "-c" "\${prev}" ]; };
  stdenv = stage 3 (stage 2 (stage 1 boot0));
  mkPkg = set: i: self: derivation ({
    name = "\${set}-pkg\${toString i}-1.0";
    inherit system;
    builder = "/bin/sh";
    args = [ "-c" "build" ];
    inherit stdenv;
    src = fetchurl { name = "\${set}-pkg\${toString i}-1.0.tar.gz"; url = "mirror://gnu/\${set}/pkg\${toString i}.tar.gz"; };
    deps = if i < 2 then [ ] else [ self."p\${toString (i / 2)}" self."p\${toString (i - 1)}" ];
  } // (if builtins.bitAnd i 1 == 0 then {
    patch = fetchurl { name = "\${set}-pkg\${toString i}.patch"; url = "http://127.0.0.1:9/patches/\${set}/\${toString i}.patch"; };
  } else { }));
  mkSet = set: let self = builtins.listToAttrs (builtins.genList (i: { name = "p\${toString i}"; value = mkPkg set i self; }) ${shape.perSet}); in self // { recurseForDerivations = true; };
in
  builtins.listToAttrs (builtins.genList (s: { name = "set\${toString s}"; value = mkSet "set\${toString s}"; }) ${shape.sets})
`,
  );
  const attrs = shape.sets * shape.perSet;
  return { attrs, fods: attrs + Math.ceil(shape.perSet / 2) * shape.sets + 1 };
}
