import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDrv, parseDrvPart, drvName } from '../src/nix-formats/drv-parse.js';
import { fodFromDrv, hasCustomPostFetch, resolveUrls } from '../src/graph/fod.js';
import { tempDir } from './helpers/cli.js';
import { showDerivationsIn } from './helpers/nix.js';

/** Instantiates an expression in a fresh chroot store and returns [store, drvPath]. */
async function instantiate(expr: string): Promise<[string, string]> {
  const store = tempDir('fodder-store-');
  const r = await execa('nix-instantiate', ['--store', store, '-E', expr]);
  return [store, r.stdout.trim()];
}

describe('parseDrv', () => {
  it('reads what Nix wrote, escapes included, equal to nix show-derivation', async () => {
    const [store, drv] = await instantiate(`derivation {
      name = "tricky"; system = "x86_64-linux"; builder = "/bin/sh";
      args = [ "-c" "echo \\"quoted\\" back\\\\slash" ];
      text = "line1\\nline2\\ttab\\rret"; unicode = "héllo ✓";
      dep = derivation { name = "dep"; system = "x86_64-linux"; builder = "/bin/sh"; outputs = [ "out" "dev" ]; };
    }`);
    const parsed = parseDrv(readFileSync(store + drv, 'utf8'), drv);
    const truth = (await showDerivationsIn(store, [drv]))[drv];
    expect(parsed.env).toEqual(truth.env);
    expect(parsed.args).toEqual(truth.args);
    expect(parsed.builder).toBe(truth.builder);
    expect(parsed.system).toBe(truth.system);
    expect(Object.fromEntries(parsed.inputDrvs.map((i) => [i.path, i.outputs]))).toEqual(truth.inputDrvs);
    expect(parsed.outputs.map((o) => [o.name, o.path])).toEqual(Object.entries(truth.outputs).map(([k, v]) => [k, v.path]));
    expect(drvName(drv)).toBe('tricky');
  });

  it('skips the environment of a non-fixed-output derivation in partial mode', async () => {
    const [store, drv] = await instantiate(`derivation { name = "x"; system = "x86_64-linux"; builder = "/bin/sh"; big = "y"; }`);
    const part = parseDrvPart(readFileSync(store + drv, 'utf8'), drv, false);
    expect(part.env).toEqual({});
    expect(part.outputs[0].name).toBe('out');
  });

  it('names the file and offset of malformed input', () => {
    expect(() => parseDrv('Derive([("out","/nix/store/x"', '/tmp/bad.drv')).toThrow(/\/tmp\/bad.drv: malformed derivation at offset \d+/);
    expect(() => parseDrv('Nope', '/tmp/bad.drv')).toThrow(/expected "Derive\("/);
  });
});

describe('fodFromDrv', () => {
  it('reads hash algo, mode and hex from the output, whatever spelling the expression used', async () => {
    const hex = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
    const spellings = [
      `outputHash = "${hex}"; outputHashAlgo = "sha256";`,
      `outputHash = "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"; outputHashAlgo = "sha256";`,
      `outputHash = "${Buffer.from(hex, 'hex').toString('base64')}"; outputHashAlgo = "sha256";`,
      `outputHash = "sha256-${Buffer.from(hex, 'hex').toString('base64')}";`,
    ];
    for (const s of spellings) {
      const [store, drv] = await instantiate(`derivation { name = "f"; system = "builtin"; builder = "builtin:fetchurl";
        url = "http://127.0.0.1:1/f"; outputHashMode = "flat"; ${s} }`);
      const fod = fodFromDrv(drv, parseDrv(readFileSync(store + drv, 'utf8')), {});
      expect(fod.hash).toEqual({ algo: 'sha256', mode: 'flat', hex, sri: `sha256-${Buffer.from(hex, 'hex').toString('base64')}` });
      expect(fod.kind).toBe('url');
      expect(fod.urls).toEqual(['http://127.0.0.1:1/f']);
    }
  });
});

describe('resolveUrls', () => {
  it('expands mirror:// in mirror order and keeps plain URLs in place', () => {
    const mirrors = { gnu: ['http://a/gnu/', 'http://b/pub/gnu'] };
    expect(resolveUrls(['mirror://gnu/hello/h.tar.gz', 'http://c/h.tar.gz'], mirrors)).toEqual([
      'http://a/gnu/hello/h.tar.gz',
      'http://b/pub/gnu/hello/h.tar.gz',
      'http://c/h.tar.gz',
    ]);
    expect(resolveUrls(['mirror://unknown/x'], mirrors)).toEqual([]);
  });
});

describe('hasCustomPostFetch', () => {
  // nixpkgs' fetchzip script, with `extra` where a user's postFetch goes
  const zip = (extra: string) =>
    `unpackDir="$TMPDIR/unpack"\nmkdir "$unpackDir"\ncd "$unpackDir"\n\n` +
    `renamed="$TMPDIR/x.tar.gz"\nmv "$downloadedFile" "$renamed"\nunpackFile "$renamed"\nchmod -R +w "$unpackDir"\n` +
    `if [ $(ls -A "$unpackDir" | wc -l) != 1 ]; then\n  echo "error: zip file must contain a single file or directory."\n` +
    `  echo "hint: Pass stripRoot=false; to fetchzip to assume flat list of files."\n  exit 1\nfi\n` +
    `fn=$(cd "$unpackDir" && ls -A)\nif [ -f "$unpackDir/$fn" ]; then\n  mkdir $out\nfi\nmv "$unpackDir/$fn" "$out"\n${extra}\n\nchmod 755 "$out"\n`;
  it("tells fetchzip's own script from a user's addition", () => {
    expect(hasCustomPostFetch({ postFetch: zip('') }, 'archive')).toBe(false);
    expect(hasCustomPostFetch({ postFetch: zip('rm -r "$out/docs"') }, 'archive')).toBe(true);
  });
  it("tells fetchpatch's own normalisation from a user's addition", () => {
    const own = 'tmpfile="$TMPDIR/x"\nlsdiff "$out" | xargs filterdiff --clean "$out" > "$tmpfile"\nmv "$tmpfile" "$out"\n';
    expect(hasCustomPostFetch({ postFetch: own }, 'patch')).toBe(false);
    expect(hasCustomPostFetch({ postFetch: own + 'sed -i s/a/b/ "$out"\n' }, 'patch')).toBe(true);
    expect(hasCustomPostFetch({}, 'url')).toBe(false);
    expect(hasCustomPostFetch({ postFetch: 'chmod +x $out' }, 'url')).toBe(true);
  });
});

void join;
