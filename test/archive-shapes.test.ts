/**
 * fetchzip of every nixpkgs version, and TeX Live's tar into $out, as their scripts really run.
 * Each script (the test package set's fetchzip of 2017, of 2018-2022 and of today, evaluated by
 * Nix, and the 2021 form between the last two) runs with bash, GNU tar and unzip on archives
 * whose top level tells the versions apart: a hidden entry beside the directory, only a hidden
 * entry, a single file, an empty directory, two directories, nothing. fodder, given nothing but
 * the script's text, must make the same tree (the same NAR hash) or fail where the script fails.
 */
import { describe, expect, test } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FodderError } from '../src/errors.js';
import { placeUnpacked, unpackArchive, unpackMethodFor, UnpackErrorCode, type UnpackLimits } from '../src/fetch/unpack.js';
import { readFetchzipScript } from '../src/graph/fetchzip.js';
import { readTarScript } from '../src/graph/tar-script.js';
import { statements } from '../src/graph/shell-script.js';
import { narHash } from '../src/nix-formats/nar.js';
import { tar, tarGz, zip, type TarItem } from './helpers/archives.js';
import { tempDir } from './helpers/cli.js';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'nixpkgs');
const root = tempDir('fodder-shapes-');
const limits: UnpackLimits = { maxBytes: 64 << 20, maxEntries: 5000 };
const ZEROS = '0'.repeat(52);

function nixEval<T>(expr: string): T {
  return JSON.parse(execFileSync('nix-instantiate', ['--eval', '--strict', '--json', '-E', expr], { encoding: 'utf8' })) as T;
}

/** The postFetch of the test package set's fetchzip `fn` for a download named `file`, with and without stripRoot. */
function fetchzipText(fn: string, file: string, stripRoot: boolean): string {
  return nixEval<string>(`((import ${FIXTURE} { system = "x86_64-linux"; }).${fn} {
    url = "http://127.0.0.1:1/${file}"; sha256 = "${ZEROS}"; stripRoot = ${stripRoot}; }).postFetch`);
}

/** Today's script as it was in 2021-2022: `chmod -R +w` already, but `ls` and `echo *` still. */
const as2021 = (today: string) => today.replace('ls -A "$unpackDir" | wc -l', 'ls "$unpackDir" | wc -l').replace('&& ls -A)', '&& echo *)');

const GENERATIONS: Record<string, (file: string, stripRoot: boolean) => string> = {
  '2017': (f, s) => fetchzipText('fetchzip2017', f, s),
  '2018-2022': (f, s) => fetchzipText('fetchzip2018', f, s),
  '2021-2022': (f, s) => (s ? as2021(fetchzipText('fetchzip', f, s)) : fetchzipText('fetchzip', f, s)),
  today: (f, s) => fetchzipText('fetchzip', f, s),
};

const dir = (name: string): TarItem => ({ name, type: '5' });
const file = (name: string, data = name, mode = 0o644): TarItem => ({ name, data, mode });

const CASES: Record<string, TarItem[]> = {
  'one directory with hidden files in it': [dir('pkg/'), file('pkg/README'), file('pkg/.hidden'), dir('pkg/bin/'), file('pkg/bin/run', '#!/bin/sh\n', 0o755)],
  'a hidden entry beside the directory': [file('._pkg', 'AppleDouble'), dir('pkg/'), file('pkg/README')],
  'only a hidden directory': [dir('.pkg/'), file('.pkg/README')],
  'a single file': [file('tool.sh', '#!/bin/sh\n', 0o755)],
  'an empty directory': [dir('pkg/')],
  'two directories': [dir('a/'), file('a/x'), dir('b/'), file('b/y')],
  'nothing at all': [],
};

type Outcome = { ok: true; hash: string } | { ok: false; why: string };
let n = 0;

/** Runs `postFetch` as fetchurl's builder would, on `bytes` downloaded: the NAR hash of $out, or the failure. */
function runScript(postFetch: string, bytes: Buffer, algo = 'sha256'): Outcome {
  const d = join(root, `script-${n++}`);
  mkdirSync(join(d, 'tmp'), { recursive: true });
  writeFileSync(join(d, 'tmp', 'file'), bytes);
  const script = `set -e\nunpackFile() { case "$1" in *.zip) unzip -qq "$1" ;; *) tar xf "$1" ;; esac; }\n${postFetch}`;
  const r = spawnSync('bash', ['-c', script], {
    cwd: d,
    encoding: 'utf8',
    env: { PATH: process.env.PATH, LC_ALL: 'C', TMPDIR: join(d, 'tmp'), out: join(d, 'out'), downloadedFile: join(d, 'tmp', 'file') },
  });
  if (r.status !== 0) return { ok: false, why: r.stderr.trim() };
  return { ok: true, hash: execFileSync('nix-hash', ['--type', algo, join(d, 'out')], { encoding: 'utf8' }).trim() };
}

/** What fodder makes of the same download, knowing only the script's text. */
async function byFodder(postFetch: string, bytes: Buffer): Promise<Outcome> {
  const script = readFetchzipScript(postFetch);
  if (!script) throw new Error('not recognised as fetchzip');
  expect(script.user).toEqual([]);
  const d = join(root, `fodder-${n++}`);
  mkdirSync(d);
  const download = join(d, 'download');
  writeFileSync(download, bytes);
  try {
    await unpackArchive(download, join(d, 'unpack'), unpackMethodFor(script.shape.fileName)!, { limits });
    await placeUnpacked(join(d, 'unpack'), join(d, 'out'), script.shape);
  } catch (e) {
    if (e instanceof FodderError && e.code === UnpackErrorCode.STRIP_ROOT) return { ok: false, why: e.message };
    throw e;
  }
  return { ok: true, hash: (await narHash(join(d, 'out'), 'sha256')).hex };
}

describe('fetchzip of each nixpkgs version: fodder makes what the script makes', () => {
  const seen = new Map<string, Outcome>();
  for (const [gen, text] of Object.entries(GENERATIONS)) {
    for (const stripRoot of [true, false]) {
      for (const [name, items] of Object.entries(CASES)) {
        test(`${gen}, stripRoot ${stripRoot}: ${name}`, async () => {
          const postFetch = text('archive.tar.gz', stripRoot);
          const bytes = tarGz(items);
          const script = runScript(postFetch, bytes);
          const ours = await byFodder(postFetch, bytes);
          expect(ours.ok, script.ok ? 'the script succeeds' : `the script fails: ${script.why}`).toBe(script.ok);
          if (script.ok && ours.ok) expect(ours.hash).toBe(script.hash);
          seen.set(`${gen} ${stripRoot} ${name}`, script);
        });
      }
    }
  }

  test('a zip, unpacked by unzip, in each version', async () => {
    const bytes = zip([
      { name: 'pkg/', mode: 0o40755 },
      { name: 'pkg/.hidden', data: 'h' },
      { name: 'pkg/run', data: '#!/bin/sh\n', mode: 0o100755 },
    ]);
    for (const [gen, text] of Object.entries(GENERATIONS)) {
      const postFetch = text('archive.zip', true);
      const script = runScript(postFetch, bytes);
      expect(script.ok, gen).toBe(true);
      expect(await byFodder(postFetch, bytes), gen).toEqual(script);
    }
  });

  test('the versions really differ on these archives (the cases above tell them apart)', () => {
    const ok = (key: string) => seen.get(key)?.ok;
    // a hidden entry beside the directory: 2017 takes both names and fails, 2018-2022 leaves it behind, today counts it and fails
    expect(ok('2017 true a hidden entry beside the directory')).toBe(false);
    expect(ok('2018-2022 true a hidden entry beside the directory')).toBe(true);
    expect(ok('2021-2022 true a hidden entry beside the directory')).toBe(true);
    expect(ok('today true a hidden entry beside the directory')).toBe(false);
    // only a hidden directory: only today's counts it
    expect(ok('2018-2022 true only a hidden directory')).toBe(false);
    expect(ok('today true only a hidden directory')).toBe(true);
    // an empty directory: 2017's `mv DIR/* $out/` has nothing to move
    expect(ok('2017 true an empty directory')).toBe(false);
    expect(ok('today true an empty directory')).toBe(true);
    expect(ok('2017 false nothing at all')).toBe(false);
    expect(ok('today false nothing at all')).toBe(true);
    expect(seen.size).toBe(Object.keys(GENERATIONS).length * 2 * Object.keys(CASES).length);
  });

  test('the scripts are recognised whatever their layout: indentation, comments, continuations, `;`', () => {
    const today = fetchzipText('fetchzip', 'archive.tar.gz', true);
    const relaid = statements(today)
      .map((s, i) => (i % 2 ? `  # step ${i}\n${s}` : `${s} `))
      .join(';\n')
      .replace('mkdir "$unpackDir"', 'mkdir \\\n  "$unpackDir"');
    expect(readFetchzipScript(relaid)).toEqual(readFetchzipScript(today));
    expect(readFetchzipScript(today)?.user).toEqual([]);
    // a statement fodder does not know before the placement: not fetchzip at all
    expect(readFetchzipScript(today.replace('unpackFile "$renamed"', 'unpackFile "$renamed"\nrm -rf "$unpackDir"/docs'))).toBeNull();
    // after it: fetchzip with a user's statements
    expect(readFetchzipScript(today.replace('chmod 755 "$out"', 'rm -r "$out/docs"\nchmod 755 "$out"'))?.user).toEqual(['rm -r "$out/docs"']);
  });
});

describe("TeX Live's tar into $out: fodder makes what GNU tar makes", () => {
  const text = (pkg: string) => nixEval<string>(`(import ${FIXTURE} { system = "x86_64-linux"; }).texlive.${pkg}.postFetch`);
  const TL: Record<string, { pkg: string; items: TarItem[]; fodder: 'same' | 'refuses' }> = {
    'texmf-dist and tlpkg at the top, no stripping': {
      pkg: 'tl-alpha',
      fodder: 'same',
      items: [
        dir('texmf-dist/'),
        file('texmf-dist/tex/a.sty'),
        file('texmf-dist/bin/run', '#!/bin/sh\n', 0o755),
        dir('tlpkg/'),
        file('tlpkg/tlpobj/a.tlpobj'),
        file('tlpkgfoo/kept'),
      ],
    },
    'one level stripped: the stored tlpkg/ is left out, pkg/tlpkg/ is not, a top-level file vanishes': {
      pkg: 'tl-beta',
      fodder: 'same',
      items: [
        file('README.top'),
        dir('pkg/'),
        file('pkg/doc/README'),
        file('pkg/tlpkg/kept'),
        file('tlpkg/tlpobj/b.tlpobj'),
        { name: 'pkg/doc/LINK', type: '1', linkname: 'pkg/doc/README' },
      ],
    },
    'names starting with ./ (tar strips the . too): refused rather than guessed': {
      pkg: 'tl-beta',
      fodder: 'refuses',
      items: [dir('./'), dir('./pkg/'), file('./pkg/README')],
    },
    'a file twice after stripping: --keep-old-files makes tar fail, and fodder does not make a tree': {
      pkg: 'tl-beta',
      fodder: 'refuses',
      items: [file('a/x', 'first'), file('b/x', 'second')],
    },
  };
  for (const [name, c] of Object.entries(TL)) {
    test(name, async () => {
      const postFetch = text(c.pkg);
      const bytes = Buffer.from(execFileSync('xz', ['-c'], { input: tar(c.items) }));
      const script = runScript(postFetch, bytes, 'sha1');
      const shape = readTarScript({ postFetch, downloadToTemp: '1' });
      expect(shape?.user).toEqual([]);
      const out = join(root, `tl-${n++}`);
      const download = `${out}.tar.xz`;
      writeFileSync(download, bytes);
      const ours = unpackArchive(download, out, { tool: 'tar' }, { limits, tar: shape!.shape });
      if (c.fodder === 'refuses') {
        await expect(ours).rejects.toBeInstanceOf(FodderError);
        return;
      }
      await ours;
      expect(script.ok, script.ok ? '' : script.why).toBe(true);
      if (script.ok) expect((await narHash(out, 'sha1')).hex).toBe(script.hash);
    });
  }

  test('only tar commands whose every option fodder reproduces are recognised', () => {
    const ok = (postFetch: string) => readTarScript({ postFetch, downloadToTemp: '1' })?.shape ?? null;
    expect(ok('mkdir "$out"; tar -xf "$downloadedFile" -C "$out"')).toEqual({ stripComponents: 0, exclude: [], keepOldFiles: false });
    expect(ok('mkdir $out\ntar --extract --file=$downloadedFile --strip-components 2 --directory=$out -k')).toEqual({
      stripComponents: 2,
      exclude: [],
      keepOldFiles: true,
    });
    expect(ok('mkdir "$out"; tar -xf $downloadedFile -C "$out" --exclude=tlpkg')).toBeNull(); // unanchored
    expect(ok('mkdir "$out"; tar -xf $downloadedFile -C "$out" --anchored --exclude=\'*.pdf\'')).toBeNull(); // a wildcard
    expect(ok('mkdir "$out"; tar -xf $downloadedFile -C "$out" --transform=s/a/b/')).toBeNull();
    expect(ok('mkdir "$out"; tar -xf $downloadedFile -C "$TMPDIR"')).toBeNull();
    expect(ok('tar -xf $downloadedFile -C "$out"')).toBeNull();
    expect(readTarScript({ postFetch: 'mkdir "$out"; tar -xf $downloadedFile -C "$out"' })).toBeNull(); // no downloadToTemp
    expect(readTarScript({ postFetch: 'mkdir "$out"; tar -xf $downloadedFile -C "$out"\nrm "$out/x"', downloadToTemp: '1' })?.user).toEqual(['rm "$out/x"']);
  });
});
