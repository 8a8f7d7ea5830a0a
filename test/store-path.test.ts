import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HASH_ALGOS, hashOf, hashSizes, toNix32, toSri, type HashMode } from '../src/nix-formats/hash.js';
import { checkStorePathName, fodStorePath, makeStorePath, parseStorePath, textStorePath, type FixedOutputHash } from '../src/nix-formats/store-path.js';

/** Evaluate a Nix expression read-only and return its JSON value. */
function nixEval(expr: string, extra: string[] = []): unknown {
  return JSON.parse(execFileSync('nix-instantiate', ['--eval', '--strict', '--json', ...extra, '-E', expr], { encoding: 'utf8' }));
}

const NAMES = [
  'source',
  'foo',
  'hello-2.12.1.tar.gz',
  'a',
  'x_y+z=?.-1',
  'UPPER-lower-123',
  'n'.repeat(207), // the longest a derivation may have: its .drv path adds 4
];

interface Case {
  hash: FixedOutputHash;
  name: string;
  /** how the Nix expression spells the hash */
  spelled: string;
  algoAttr: string;
}

function cases(): Case[] {
  const out: Case[] = [];
  let i = 0;
  for (const algo of HASH_ALGOS) {
    for (const mode of ['flat', 'recursive'] as HashMode[]) {
      for (let k = 0; k < 6; k++) {
        const hex = randomBytes(hashSizes[algo]).toString('hex');
        const name = NAMES[i++ % NAMES.length];
        const h = { algo, hex };
        // Rotate through the spellings a Nix expression may use.
        const spellings: [string, string][] = [
          [hex, algo],
          [toNix32(h), algo],
          [toSri(h), ''],
        ];
        const [spelled, algoAttr] = spellings[k % spellings.length];
        out.push({ hash: { algo, mode, hex }, name, spelled, algoAttr });
      }
    }
  }
  return out;
}

describe('fodStorePath matches the outPath real Nix gives a fixed-output derivation', () => {
  it('for every algorithm, both modes, several names and every hash spelling', () => {
    const cs = cases();
    const drvs = cs.map(
      (c) =>
        `(derivation { name = ${JSON.stringify(c.name)}; builder = "/bin/sh"; system = "x86_64-linux"; ` +
        `outputHashMode = "${c.hash.mode}"; outputHashAlgo = "${c.algoAttr}"; outputHash = "${c.spelled}"; }).outPath`,
    );
    const paths = nixEval(`[ ${drvs.join('\n')} ]`) as string[];
    expect(paths).toHaveLength(cs.length);
    cs.forEach((c, i) => expect(fodStorePath(c.hash, c.name), JSON.stringify(c)).toBe(paths[i]));
    // Sanity: sha256+recursive really took the `source` branch and the others did not.
    const srcCase = cs.find((c) => c.hash.algo === 'sha256' && c.hash.mode === 'recursive')!;
    expect(makeStorePath('source', srcCase.hash.hex, srcCase.name)).toBe(fodStorePath(srcCase.hash, srcCase.name));
  });

  it('honours another store directory', () => {
    const hash: FixedOutputHash = { algo: 'sha1', mode: 'flat', hex: hashOf('sha1', 'x').hex };
    const expr = `(derivation { name = "x"; builder = "/bin/sh"; system = "x"; outputHashMode = "flat"; outputHashAlgo = "sha1"; outputHash = "${hash.hex}"; }).outPath`;
    const theirs = nixEval(expr, ['--store', 'dummy://?store=/opt/store']);
    expect(fodStorePath(hash, 'x', '/opt/store')).toBe(theirs);
  });

  it('refuses a digest of the wrong size for its algorithm', () => {
    expect(() => fodStorePath({ algo: 'sha512', mode: 'flat', hex: 'ab'.repeat(32) }, 'x')).toThrow(/sha512/);
  });
});

describe('textStorePath matches builtins.toFile', () => {
  it('without and with references', () => {
    const texts = ['', 'hello', 'line\nline\n', 'ü'.repeat(1000)];
    const longest = 't'.repeat(211);
    expect(textStorePath('x', longest)).toBe(nixEval(`builtins.toFile "${longest}" "x"`));
    const exprs = texts.map((t, i) => `(builtins.toFile "t${i}" ${JSON.stringify(t)})`);
    const plain = nixEval(`[ ${exprs.join(' ')} ]`) as string[];
    texts.forEach((t, i) => expect(textStorePath(t, `t${i}`)).toBe(plain[i]));

    const refExpr = `let a = builtins.toFile "a" "A"; b = builtins.toFile "b" "B"; in
      [ a b (builtins.toFile "c" "\${b} and \${a}") ]`;
    const [a, b, c] = nixEval(refExpr) as string[];
    expect(textStorePath(`${b} and ${a}`, 'c', [b, a])).toBe(c);
    expect(textStorePath(`${b} and ${a}`, 'c')).not.toBe(c);
  });
});

describe('store path names', () => {
  const bad = ['', 'a b', 'a/b', 'ä', 'x'.repeat(212), 'a:b'];
  for (const name of bad) {
    it(`refuses ${JSON.stringify(name)} like Nix`, () => {
      expect(() => checkStorePathName(name)).toThrow(/store path name/);
      const r = spawnSync('nix-instantiate', ['--eval', '-E', `builtins.toFile ${JSON.stringify(name)} "x"`], { encoding: 'utf8' });
      expect(r.status).not.toBe(0);
    });
  }

  it('refuses ., .. and names starting .- or ..- (current Nix; 2.8 still let them through)', () => {
    for (const name of ['.', '..', '.-x', '..-x']) expect(() => checkStorePathName(name)).toThrow(/not valid/);
    for (const name of ['.x', '..x', '.hidden-1']) expect(() => checkStorePathName(name)).not.toThrow();
  });

  it('accepts every name Nix accepted above', () => {
    for (const n of NAMES) expect(() => checkStorePathName(n)).not.toThrow();
  });

  it('splits a store path and refuses a bad hash part', () => {
    const p = fodStorePath({ algo: 'sha256', mode: 'recursive', hex: hashOf('sha256', 'x').hex }, 'src-1.0');
    const parts = parseStorePath(p);
    expect(parts.name).toBe('src-1.0');
    expect(`${parts.storeDir}/${parts.hashPart}-${parts.name}`).toBe(p);
    expect(() => parseStorePath('/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-x')).toThrow(/hash part/);
    expect(() => parseStorePath('/usr/bin/x')).toThrow(/not in the Nix store/);
  });
});
