/**
 * A package set whose every source is a file served on loopback: for the service's load test
 * and `bench:serve`, whose jobs must fetch something real and never leave 127.0.0.1. The files
 * are random bytes written into a directory that a loopback server serves; each is one
 * `builtin:fetchurl` FOD with its real sha256, `sets` attribute sets of `perSet` packages.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface LoopbackFile {
  /** path under the served root, `f/<i>.bin` */
  path: string;
  sha256: string;
  /** sha512, hex: the name the hashed mirror stores the file under (the others are links) */
  sha512: string;
  bytes: number;
}

export interface LoopbackSetOptions {
  /** where the package set is written */
  dir: string;
  /** the directory a loopback server serves (the files go under `f/`) */
  www: string;
  /** the server's address, `http://127.0.0.1:PORT` */
  base: string;
  files: number;
  /** the size of file i */
  bytes: (i: number) => number;
  /** files per attribute set (default 200) */
  perSet?: number;
}

/** Writes the files and the package set; returns the files with their hashes. */
export function writeLoopbackSet(o: LoopbackSetOptions): LoopbackFile[] {
  const perSet = o.perSet ?? 200;
  mkdirSync(join(o.www, 'f'), { recursive: true });
  mkdirSync(join(o.dir, 'pkgs', 'build-support', 'fetchurl'), { recursive: true });
  writeFileSync(join(o.dir, 'pkgs', 'build-support', 'fetchurl', 'mirrors.nix'), '{ }\n');
  const files: LoopbackFile[] = [];
  const chunk = Buffer.allocUnsafe(1 << 20);
  for (let i = 0; i < o.files; i++) {
    const hash = createHash('sha256');
    const hash512 = createHash('sha512');
    const parts: Buffer[] = [];
    for (let left = o.bytes(i); left > 0; left -= chunk.length) {
      const part = Buffer.from(randomFillSync(chunk).subarray(0, Math.min(left, chunk.length)));
      hash.update(part);
      hash512.update(part);
      parts.push(part);
    }
    const path = `f/${i}.bin`;
    writeFileSync(join(o.www, path), Buffer.concat(parts));
    files.push({ path, sha256: hash.digest('hex'), sha512: hash512.digest('hex'), bytes: o.bytes(i) });
  }
  const sets = new Map<number, string[]>();
  files.forEach((f, i) => {
    const s = Math.floor(i / perSet);
    const pkg = `    p${i} = fetchurl { name = "file-${i}.bin"; url = "${o.base}/${f.path}"; sha256 = "${f.sha256}"; };`;
    (sets.get(s) ?? sets.set(s, []).get(s)!).push(pkg);
  });
  writeFileSync(
    join(o.dir, 'default.nix'),
    `{ system ? builtins.currentSystem, config ? { }, overlays ? [ ] }:
let
  fetchurl = { name, url, sha256 }: derivation {
    inherit name system url;
    builder = "builtin:fetchurl";
    outputHash = sha256;
    outputHashAlgo = "sha256";
    outputHashMode = "flat";
  };
in {
${[...sets].map(([s, pkgs]) => `  set${s} = {\n    recurseForDerivations = true;\n${pkgs.join('\n')}\n  };`).join('\n')}
}
`,
  );
  return files;
}
