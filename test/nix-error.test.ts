import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { join } from 'node:path';
import { nixErrorHeadline } from '../src/graph/nix-error.js';
import { fodder, tempDir, writePackageSet } from './helpers/cli.js';

/** What nix-instantiate prints on stderr for an expression that fails. */
async function nixError(expr: string): Promise<string> {
  const r = await execa('nix-instantiate', ['--eval', '--strict', '--store', 'dummy://', '-E', expr], { reject: false, env: { NO_COLOR: '1' } });
  expect(r.exitCode).not.toBe(0);
  return String(r.stderr).trim();
}

describe('the line of a Nix error that says what failed', () => {
  it('is found in what the Nix on PATH prints, with or without frames before it', async () => {
    // a failure under builtin calls: Nix 2.26 prints the frames first and the message last
    const framed = await nixError('builtins.seq (builtins.seq 1 (throw "boom")) 1');
    expect(nixErrorHeadline(framed)).toBe('error: boom');
    const missing = await nixError('let s = { a = 1; }; in builtins.seq (s.b) 1');
    expect(nixErrorHeadline(missing)).toBe("error: attribute 'b' missing");
    expect(nixErrorHeadline(await nixError('abort "gone"'))).toBe("error: evaluation aborted with the following error message: 'gone'");
    expect(nixErrorHeadline('HTTP 404 from https://x\nmore')).toBe('HTTP 404 from https://x');
  });

  it('is what `fodder attrs` shows for an attribute that failed to evaluate', async () => {
    const set = writePackageSet(`{ system, config ? {}, overlays ? [] }: {
      a-ok = derivation { name = "a"; inherit system; builder = "/bin/sh"; };
      b-missing = { }.noSuchAttr;
      c-throw = throw "c was removed";
    }`);
    const db = join(tempDir(), 'f.db');
    const crawl = await fodder(['crawl', '--nixpkgs', set, '--db', db, '--system', 'x86_64-linux', '--variant', 'default', '--no-progress']);
    expect(crawl.code, crawl.stderr).toBe(0);
    const r = await fodder(['attrs', '--status', 'error', '--db', db]);
    expect(r.code, r.stderr).toBe(0);
    const line = (path: string) => r.stdout.split('\n').find((l) => l.includes(` ${path} `)) ?? '';
    expect(line('b-missing')).toMatch(/uncatchable: error: attribute 'noSuchAttr' missing$/);
    expect(line('c-throw')).toMatch(/catchable: error: c was removed$/);
  });
});
