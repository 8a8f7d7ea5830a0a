/**
 * The threaded NAR hash the archive and git plug-ins use (a large tree's walk split over two
 * walker threads and hashed on the calling thread; otherwise the walk on the calling thread and
 * the hash on a worker) gives what `nix-hash --type sha256` and the single-threaded narHash give:
 * on a tree with large files (moved to the worker in 4 MiB chunks), many small ones, symlinks
 * and executables; for other algorithms; for a single file; with several hashes at once.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { narHash } from '../src/nix-formats/nar.js';
import { narHashRoutes, narHashThreaded } from '../src/mirror/nar-hash-threaded.js';
import { tempDir } from './helpers/cli.js';

const dir = tempDir('fodder-narthreaded-');
const tree = join(dir, 'tree');
const nixHash = (p: string, algo = 'sha256') => execFileSync('nix-hash', ['--type', algo, p], { encoding: 'utf8' }).trim();

beforeAll(() => {
  mkdirSync(join(tree, 'big'), { recursive: true });
  for (let i = 0; i < 3; i++) writeFileSync(join(tree, 'big', `blob${i}`), randomFillSync(Buffer.alloc((9 << 20) + i * 12345)));
  for (let d = 0; d < 60; d++) {
    const sub = join(tree, 'src', `d${d}`);
    mkdirSync(sub, { recursive: true });
    for (let f = 0; f < 30; f++) writeFileSync(join(sub, `f${f}`), randomFillSync(Buffer.alloc((d * 131 + f * 977) % 9000)));
    chmodSync(join(sub, 'f1'), 0o755);
    symlinkSync('f0', join(sub, 'link'));
  }
  writeFileSync(join(tree, 'medium'), randomFillSync(Buffer.alloc(600_000)));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('narHashThreaded', () => {
  test('equals nix-hash and narHash on a mixed tree, with the NAR size, splitting the walk over threads', async () => {
    const before = narHashRoutes();
    const [threaded, single] = await Promise.all([narHashThreaded(tree), narHash(tree)]);
    expect(threaded).toEqual(single);
    expect(threaded.hex).toBe(nixHash(tree));
    expect(narHashRoutes().parallel).toBe(before.parallel + 1);
  });

  test('split walks: odd names, empty and dangling units at the seams, and a failure inside a unit', async () => {
    const t = join(dir, 'seams');
    for (let d = 0; d < 10; d++) {
      const sub = join(t, `top${d}`, `unit${d}`);
      mkdirSync(sub, { recursive: true });
      writeFileSync(join(sub, 'f'), `unit ${d}\n`);
    }
    mkdirSync(join(t, 'top0', 'empty-unit'));
    symlinkSync('/nowhere', join(t, 'top1', 'dangling-unit'));
    writeFileSync(join(t, 'top2', 'exec-unit'), '#!/bin/sh\n');
    chmodSync(join(t, 'top2', 'exec-unit'), 0o755);
    writeFileSync(Buffer.from(join(t, 'top3') + '/caf\xe9-\xff', 'latin1'), 'not UTF-8\n');
    writeFileSync(join(t, 'file-at-depth-1'), '');
    const before = narHashRoutes().parallel;
    expect((await narHashThreaded(t)).hex).toBe(nixHash(t));
    expect(narHashRoutes().parallel).toBe(before + 1);

    execFileSync('mkfifo', [join(t, 'top7', 'unit7', 'fifo')]);
    await expect(narHashThreaded(t)).rejects.toThrow(/fifo/);
    rmSync(join(t, 'top7', 'unit7', 'fifo'));
    expect((await narHashThreaded(t)).hex).toBe(nixHash(t));
  });

  test('other algorithms', async () => {
    for (const algo of ['sha1', 'sha512', 'md5'] as const) expect((await narHashThreaded(tree, algo)).hex).toBe(nixHash(tree, algo));
  });

  test('a single file and an empty directory', async () => {
    expect((await narHashThreaded(join(tree, 'medium'))).hex).toBe(nixHash(join(tree, 'medium')));
    mkdirSync(join(dir, 'empty'));
    expect((await narHashThreaded(join(dir, 'empty'))).hex).toBe(nixHash(join(dir, 'empty')));
  });

  test('many at once share the worker without mixing their data', async () => {
    const subs = Array.from({ length: 12 }, (_, i) => join(tree, 'src', `d${i * 5}`));
    const got = await Promise.all(subs.map((s) => narHashThreaded(s)));
    expect(got.map((g) => g.hex)).toEqual(subs.map((s) => nixHash(s)));
  });

  test('a path that does not exist fails, and the next call still works', async () => {
    await expect(narHashThreaded(join(dir, 'missing'))).rejects.toThrow();
    expect((await narHashThreaded(join(tree, 'src', 'd3'))).hex).toBe(nixHash(join(tree, 'src', 'd3')));
  });
});
