/**
 * The NixOS packaging (nix/package.nix, nix/module.nix) and the acceptance expression that
 * evaluates the module (bench/accept-module.nix) parse with Nix. Evaluating the module needs a
 * nixpkgs tree: `npm run accept:module -- --nixpkgs PATH`.
 */
import { describe, expect, test } from 'vitest';
import { execa } from 'execa';
import { join } from 'node:path';
import { ROOT } from './helpers/cli.js';

describe('NixOS packaging', () => {
  for (const file of ['nix/package.nix', 'nix/module.nix', 'bench/accept-module.nix']) {
    test(`${file} parses`, async () => {
      const r = await execa('nix-instantiate', ['--parse', join(ROOT, file)], { reject: false });
      expect(r.exitCode, r.stderr).toBe(0);
    });
  }
});
