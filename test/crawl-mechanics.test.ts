import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { fodder, tempDir, writePackageSet } from './helpers/cli.js';

const FETCH = `fetch = name: derivation {
    inherit name; system = "builtin"; builder = "builtin:fetchurl";
    url = "http://127.0.0.1:9/\${name}"; urls = "http://127.0.0.1:9/\${name}";
    outputHash = builtins.hashString "sha256" name; outputHashAlgo = "sha256"; outputHashMode = "flat"; };`;

function attrsOf(
  db: string,
): Record<string, { status: string; error_kind: string | null; error: string | null; alias_of: string | null; reason: string | null }> {
  const d = new Database(db, { readonly: true });
  const rows = d.prepare(`SELECT path, status, error_kind, error, alias_of, reason FROM attrs`).all() as {
    path: string;
    status: string;
    error_kind: string | null;
    error: string | null;
    alias_of: string | null;
    reason: string | null;
  }[];
  d.close();
  return Object.fromEntries(rows.map((r) => [r.path, r]));
}

async function crawlSet(set: string, extra: string[] = [], configYaml?: string, env: Record<string, string> = {}) {
  const dir = tempDir();
  const db = join(dir, 'f.db');
  const args = ['crawl', '--nixpkgs', set, '--db', db, '--store', join(dir, 'store'), '--system', 'x86_64-linux', '--variant', 'default', '--json', ...extra];
  if (configYaml) {
    writeFileSync(join(dir, 'c.yaml'), configYaml);
    args.push('--config', join(dir, 'c.yaml'));
  }
  const r = await fodder(args, { env });
  return { ...r, db, dir };
}

describe('the walk', () => {
  it("records every uncatchable failure with Nix's message and crawls what follows", async () => {
    const set = writePackageSet(`{ system, config ? {}, overlays ? [] }: let ${FETCH}
      pkg = n: derivation { name = n; inherit system; builder = "/bin/sh"; src = fetch "\${n}.tar"; }; in rec {
      a-ok = pkg "a";
      b-missing = a-ok.noSuchAttr;
      c-type = 1 + "x";
      d-abort = abort "d is gone";
      e-loop = let x = x; in x;
      f-ok = pkg "f";
      g-throw = throw "g was removed";
      h-assert = assert false; pkg "h";
      nested = { recurseForDerivations = true; n1-abort = abort "nested abort"; n2-ok = pkg "n2"; n3-type = { } + 1; n4-ok = pkg "n4"; };
      z-ok = pkg "z";
    }`);
    const r = await crawlSet(set);
    expect(r.code, r.stderr).toBe(0);
    const a = attrsOf(r.db);
    for (const ok of ['a-ok', 'f-ok', 'z-ok', 'nested.n2-ok', 'nested.n4-ok']) expect(a[ok].status, ok).toBe('drv');
    expect(a['b-missing']).toMatchObject({ status: 'error', error_kind: 'uncatchable' });
    expect(a['b-missing'].error).toMatch(/attribute 'noSuchAttr' missing/);
    expect(a['c-type'].error).toMatch(/cannot add a string to an integer/);
    expect(a['d-abort'].error).toMatch(/evaluation aborted with the following error message: 'd is gone'/);
    expect(a['e-loop'].error).toMatch(/infinite recursion encountered/);
    expect(a['nested.n1-abort'].error).toMatch(/nested abort/);
    expect(a['nested.n3-type']).toMatchObject({ status: 'error', error_kind: 'uncatchable' });
    // caught by tryEval: recorded as catchable, with the message Nix gives when evaluated alone
    expect(a['g-throw']).toMatchObject({ status: 'error', error_kind: 'catchable' });
    expect(a['g-throw'].error).toMatch(/g was removed/);
    expect(a['h-assert'].error).toMatch(/assertion .*failed/);
    const summary = JSON.parse(r.stdout);
    expect(summary.attrs).toMatchObject({ drv: 5, error: 8 });
    expect(summary.fods).toBe(5);
  });

  it('survives the failure shapes of a real nixpkgs (17.03): a missing file, a crash of Nix, failures inside a batch', async () => {
    // nixpkgs 17.03 without its hackage-packages.nix (a snapshot leaves it out): every attribute
    // that imports it fails uncatchably; a value nested a million deep overflows Nix's own stack
    // (the evaluator dies and a new one takes up the rest); 60 attributes around them share
    // batches with the failures
    const set = writePackageSet(`{ system, config ? {}, overlays ? [] }: let ${FETCH}
      pkg = n: derivation { name = n; inherit system; builder = "/bin/sh"; src = fetch "\${n}.tar"; };
      many = builtins.listToAttrs (builtins.genList (i: { name = "p\${toString i}"; value = pkg "p\${toString i}"; }) 60);
      in many // {
      haskellPackages = import ./pkgs/development/haskell-modules/hackage-packages.nix;
      ghc-hello = (import ./pkgs/development/haskell-modules/hackage-packages.nix).hello;
      p30-crash = builtins.toJSON (builtins.foldl' (x: y: [ x ]) [ ] (builtins.genList (x: x) 1000000));
      p45-throw = throw "p45 was removed";
    }`);
    const r = await crawlSet(set);
    expect(r.code, r.stderr).toBe(0);
    const a = attrsOf(r.db);
    for (let i = 0; i < 60; i++) expect(a[`p${i}`].status, `p${i}`).toBe('drv');
    for (const p of ['haskellPackages', 'ghc-hello']) {
      expect(a[p]).toMatchObject({ status: 'error', error_kind: 'uncatchable' });
      expect(a[p].error).toMatch(/hackage-packages\.nix/);
    }
    expect(a['p30-crash']).toMatchObject({ status: 'error', error_kind: 'uncatchable' });
    expect(a['p30-crash'].error).toMatch(/stack overflow/);
    expect(a['p45-throw']).toMatchObject({ status: 'error', error_kind: 'catchable', error: expect.stringContaining('p45 was removed') });
    expect(JSON.parse(r.stdout).fods).toBe(60);
  });

  it('terminates on self-references, re-imports and values of every type, and crawls an alias set once', async () => {
    const set = writePackageSet(`{ system, config ? {}, overlays ? [] }: let ${FETCH}
      pkg = n: derivation { name = n; inherit system; builder = "/bin/sh"; src = fetch "\${n}.tar"; };
      self = rec {
        hello = pkg "hello";
        pkgs = self; buildPackages = self;
        pkgsCross = { aarch64 = import ./. { system = "aarch64-linux"; }; recurseForDerivations = true; };
        myself = self // { recurseForDerivations = true; };
        loopy = { recurseForDerivations = true; again = loopy; p = pkg "loopy-p"; };
        fn = x: x; lst = [ 1 2 ]; str = "s"; num = 3; nul = null; bool = true;
        functor = { __functor = s: x: x; inner = pkg "functor-inner"; };
        big = { recurseForDerivations = true; x = pkg "bx"; y = pkg "by"; sub = { recurseForDerivations = true; z = pkg "bz"; }; };
        bigAlias = big;
        hidden = { deep = { deeper = { p = pkg "hidden-p"; }; }; };
      }; in self`);
    for (const exhaustive of [false, true]) {
      const r = await crawlSet(set, exhaustive ? ['--exhaustive'] : []);
      expect(r.code, r.stderr).toBe(0);
      const a = attrsOf(r.db);
      expect(a['pkgs']).toMatchObject({ status: 'skipped' });
      expect(a['buildPackages']).toMatchObject({ status: 'skipped' });
      expect(a['pkgsCross']).toMatchObject({ status: 'skipped' });
      expect(a['bigAlias'].alias_of).toBe('big');
      expect(a['bigAlias.sub.z']).toBeUndefined();
      expect(a['big.sub.z'].status).toBe('drv');
      for (const t of ['fn', 'lst', 'str', 'num', 'nul', 'bool']) expect(a[t].status, t).toBe('skipped');
      // the self-copy is seen as an alias of the root's content one level down at most
      const depth = Math.max(...Object.keys(a).map((p) => (p === '' ? 0 : p.split('.').length)));
      expect(depth).toBeLessThanOrEqual(8);
      if (exhaustive) {
        expect(a['hidden.deep.deeper.p'].status).toBe('drv');
        expect(a['functor.inner'].status).toBe('drv');
      } else {
        expect(a['hidden.deep']).toBeUndefined();
        expect(a['hidden'].reason).toBe('no recurseForDerivations');
      }
    }
  });

  it("lets the variant decide what is allowed, not NIXPKGS_ALLOW_* in the caller's environment", async () => {
    const set = writePackageSet(`{ system, config ? {}, overlays ? [] }: let ${FETCH}
      pkg = n: derivation { name = n; inherit system; builder = "/bin/sh"; src = fetch "\${n}.tar"; }; in {
      gated = if builtins.getEnv "NIXPKGS_ALLOW_UNFREE" == "1" || (config.allowUnfree or false) then pkg "gated" else throw "unfree, refused";
    }`);
    const r = await crawlSet(set, [], undefined, { NIXPKGS_ALLOW_UNFREE: '1' });
    expect(r.code, r.stderr).toBe(0);
    expect(attrsOf(r.db)['gated']).toMatchObject({ status: 'error', error_kind: 'catchable' });
    expect(attrsOf(r.db)['gated'].error).toMatch(/unfree, refused/);
  });

  it('splits a shard that passes its time cap and records the one attribute that passes it alone', async () => {
    const set = writePackageSet(`{ system, config ? {}, overlays ? [] }: let ${FETCH}
      pkg = n: derivation { name = n; inherit system; builder = "/bin/sh"; src = fetch "\${n}.tar"; }; in {
      a = pkg "a"; b = pkg "b";
      slow = builtins.seq (builtins.readFile ./fifo) (pkg "slow");
      c = pkg "c"; d = pkg "d";
    }`);
    // a named pipe nobody writes: reading it never ends and takes no memory (a long computation
    // can meet the memory cap first)
    execFileSync('mkfifo', [join(set, 'fifo')]);
    const r = await crawlSet(set, [], 'limits:\n  shardTimeoutSec: 2\n');
    expect(r.code, r.stderr).toBe(0);
    const a = attrsOf(r.db);
    expect(a['slow']).toMatchObject({ status: 'error', error_kind: 'timeout' });
    for (const ok of ['a', 'b', 'c', 'd']) expect(a[ok].status).toBe('drv');
  });

  it('splits a shard that passes its memory cap and records the attribute that passes it alone', async () => {
    const set = writePackageSet(`{ system, config ? {}, overlays ? [] }: let ${FETCH}
      pkg = n: derivation { name = n; inherit system; builder = "/bin/sh"; src = fetch "\${n}.tar"; }; in {
      a = pkg "a";
      hog = builtins.seq (builtins.length (builtins.genList (i: toString i) 20000000)) (pkg "hog");
      b = pkg "b";
    }`);
    const r = await crawlSet(set, [], 'limits:\n  memoryMb: 300\n  shardTimeoutSec: 60\n');
    expect(r.code, r.stderr).toBe(0);
    const a = attrsOf(r.db);
    expect(a['hog']).toMatchObject({ status: 'error', error_kind: 'memory' });
    expect(a['a'].status).toBe('drv');
    expect(a['b'].status).toBe('drv');
  });
});
