/**
 * The crawl's drv store: Nix writes .drv files into a binary-cache directory
 * (`file://DIR?compression=none`), and fodder reads them back from narinfo + NAR. Checked
 * against Nix's own reading of the same store.
 */
import { describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { drvStoreHas, drvStoreUrl, narinfoFile, readStoreText } from '../src/graph/store-slots.js';
import { FIXTURE, fodder, tempDir } from './helpers/cli.js';

const EXPR = `
  let
    src = derivation { name = "src.tar.gz"; system = "x86_64-linux"; builder = "builtin:fetchurl";
      url = "http://127.0.0.1:9/src.tar.gz"; outputHashMode = "flat"; outputHashAlgo = "sha256";
      outputHash = "0000000000000000000000000000000000000000000000000000"; };
  in derivation { name = "pkg-1.0"; system = "x86_64-linux"; builder = "/bin/sh";
    args = [ "-c" "echo \${src} > $out" ]; note = "non-ASCII: \u00e9\u00e8 \u2603"; }`;

function instantiate(url: string): string {
  return execFileSync('nix-instantiate', ['--store', url, '-E', EXPR], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

describe('drv store directories', () => {
  test('readStoreText returns the bytes Nix itself reads for every .drv of a closure', () => {
    const dir = join(tempDir('fodder-drvstore-'), 'store');
    const url = drvStoreUrl(dir);
    const drv = instantiate(url);
    const closure = execFileSync('nix-store', ['--store', url, '-qR', drv], { encoding: 'utf8' }).trim().split('\n');
    expect(closure.filter((p) => p.endsWith('.drv'))).toHaveLength(2);
    for (const p of closure) {
      expect(drvStoreHas(dir, p)).toBe(true);
      const nixSays = execFileSync('nix', ['--extra-experimental-features', 'nix-command', 'store', 'cat', '--store', url, p], { encoding: 'utf8' });
      expect(readStoreText(dir, p)).toBe(nixSays);
    }
    expect(readStoreText(dir, drv)).toContain('non-ASCII: \u00e9\u00e8 \u2603');
    expect(drvStoreHas(dir, '/nix/store/00000000000000000000000000000000-absent.drv')).toBe(false);
  });

  test('a compressed store, a missing NAR and a damaged NAR are errors that name the file', () => {
    const dir = join(tempDir('fodder-drvstore-'), 'xz');
    const drv = instantiate(`file://${dir}?compression=xz`);
    expect(() => readStoreText(dir, drv)).toThrow(narinfoFile(dir, drv));

    const plain = join(tempDir('fodder-drvstore-'), 'store');
    const d2 = instantiate(drvStoreUrl(plain));
    const info = execFileSync('cat', [narinfoFile(plain, d2)], { encoding: 'utf8' });
    const nar = join(plain, /^URL: (.*)$/m.exec(info)![1]);
    writeFileSync(nar, Buffer.from('garbage!garbage!'));
    expect(() => readStoreText(plain, d2)).toThrow(nar);
    writeFileSync(narinfoFile(plain, d2), info.replace(/^URL: .*$/m, 'URL: nar/missing.nar'));
    expect(() => readStoreText(plain, d2)).toThrow(/missing\.nar/);
  });

  test('a store directory whose path Nix would read as a URL query is refused', () => {
    expect(() => drvStoreUrl('/tmp/a?b')).toThrow(/a\?b/);
  });

  test('crawl refuses a chroot store left by an earlier version, and names it', async () => {
    const d = tempDir('fodder-oldstore-');
    mkdirSync(join(d, 'store', 'nix', 'var', 'nix', 'db'), { recursive: true });
    const r = await fodder([
      'crawl',
      '--nixpkgs',
      FIXTURE,
      '--db',
      join(d, 'f.db'),
      '--store',
      join(d, 'store'),
      '--system',
      'x86_64-linux',
      '--variant',
      'default',
    ]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`${join(d, 'store')} is a chroot Nix store`);
  });
});
