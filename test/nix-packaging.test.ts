/**
 * The NixOS packaging (nix/package.nix, nix/module.nix) and the acceptance expression that
 * evaluates the module (bench/accept-module.nix) parse with Nix. Evaluating the module needs a
 * nixpkgs tree: `npm run accept:module -- --nixpkgs PATH`. The package takes its npm
 * dependencies from package-lock.json (importNpmLock), which fetches only entries that record
 * where they come from: every one must have its registry URL and integrity.
 */
import { describe, expect, test } from 'vitest';
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers/cli.js';

describe('NixOS packaging', () => {
  for (const file of ['nix/package.nix', 'nix/module.nix', 'bench/accept-module.nix']) {
    test(`${file} parses`, async () => {
      const r = await execa('nix-instantiate', ['--parse', join(ROOT, file)], { reject: false });
      expect(r.exitCode, r.stderr).toBe(0);
    });
  }

  test('every package of package-lock.json has the registry URL and the integrity importNpmLock fetches it by', () => {
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { name?: string; version?: string; resolved?: string; integrity?: string; link?: boolean }>;
    };
    const entries = Object.entries(lock.packages).filter(([path]) => path !== '');
    expect(entries.length).toBeGreaterThan(100);
    for (const [path, p] of entries) {
      expect(p.link, path).toBeUndefined();
      const name = p.name ?? path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
      expect(p.resolved, path).toBe(`https://registry.npmjs.org/${name}/-/${name.split('/').pop()}-${p.version}.tgz`);
      expect(p.integrity, path).toMatch(/^sha(1|512)-[A-Za-z0-9+/]+=*$/);
    }
  });
});
