import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './servers.js';

/** the repository root, under vitest or from a benchmark built into dist/ */
export const ROOT = repoRoot();
export const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
export const FIXTURE = join(ROOT, 'test', 'fixtures', 'nixpkgs');

/** Runs the built `fodder` CLI as a user would; never throws on a non-zero exit. */
export async function fodder(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
  const r = await execa('node', [CLI, ...args], { reject: false, cwd: options.cwd ?? ROOT, env: { CI: '1', ...options.env }, stdin: 'ignore' });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Starts the CLI without waiting (for kill tests). */
export function fodderSpawn(args: string[], cwd = ROOT): ResultPromise {
  return execa('node', [CLI, ...args], { reject: false, cwd, env: { CI: '1' }, stdin: 'ignore' });
}

/** A fresh temporary directory. */
export function tempDir(prefix = 'fodder-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes a small package set (a `default.nix` taking { system, config, overlays }) and returns its path. */
export function writePackageSet(body: string, mirrors = '{ }'): string {
  const dir = tempDir('fodder-set-');
  writeFileSync(join(dir, 'default.nix'), body);
  mkdirSync(join(dir, 'pkgs', 'build-support', 'fetchurl'), { recursive: true });
  writeFileSync(join(dir, 'pkgs', 'build-support', 'fetchurl', 'mirrors.nix'), mirrors);
  return dir;
}
