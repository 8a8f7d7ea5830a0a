/**
 * A trap from real nixpkgs (17.03's texlive-combined-full): a derivation with thousands of inputs
 * has a narinfo past 64 KiB, the size of the buffer a worker reads .drv files with at first.
 * The narinfo was once parsed from the buffer before it grew, lost its References line, and the
 * crawl died. This file runs in a fresh module instance, so the big narinfo is the first file read.
 */
import { expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { DrvGraph, readDrvClosure, type ReadClosure } from '../src/graph/closure.js';
import { drvStoreUrl, narinfoFile } from '../src/graph/store-slots.js';
import { tempDir } from './helpers/cli.js';

const INPUTS = 2500;
const EXPR = `
  let
    part = i: derivation { name = "texlive-part-\${toString i}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; };
    parts = builtins.genList part ${INPUTS};
  in derivation { name = "texlive-combined-full"; system = "x86_64-linux"; builder = "/bin/sh";
    args = [ "-c" "echo > $out" ]; paths = parts; }`;

test('a .drv whose narinfo is larger than the first read buffer is read whole, with all its inputs', () => {
  const dir = join(tempDir('fodder-drvstore-large-'), 'store');
  const url = drvStoreUrl(dir);
  const drv = execFileSync('nix-instantiate', ['--store', url, '-E', EXPR], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  expect(statSync(narinfoFile(dir, drv)).size).toBeGreaterThan(64 * 1024);
  const graph = new DrvGraph();
  const read: ReadClosure = { drvs: [], sources: [] };
  readDrvClosure([drv], dir, {}, graph, read);
  const nixSays = execFileSync('nix-store', ['--store', url, '-qR', drv], { encoding: 'utf8', maxBuffer: 1 << 26 })
    .trim()
    .split('\n');
  expect(read.drvs.map((d) => d.drvPath).sort()).toEqual(nixSays.filter((p) => p.endsWith('.drv')).sort());
  expect(read.drvs.find((d) => d.drvPath === drv)!.inputDrvs).toHaveLength(INPUTS);
});
