/**
 * Unpacking archives: the tree fodder unpacks is the tree nixpkgs' fetchzip makes (GNU tar,
 * unzip, stripRoot, then `nix-hash`), for every compression and tricky-but-legal content; and
 * hostile archives (path traversal, absolute names, symlink escapes, hard links out, devices,
 * bombs) are refused without a byte written outside the work directory.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, linkSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createGzip } from 'node:zlib';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { FodderError } from '../src/errors.js';
import { narHash } from '../src/nix-formats/nar.js';
import { placeUnpacked, unpackArchive, unpackMethodFor, UnpackErrorCode, type UnpackLimits } from '../src/fetch/unpack.js';
import { tar, tarGz, zip } from './helpers/archives.js';
import { tempDir } from './helpers/cli.js';

const root = tempDir('fodder-unpack-');
const outside = join(root, 'outside');
const work = join(root, 'work');
const limits: UnpackLimits = { maxBytes: 64 << 20, maxEntries: 5000 };

/** Every path under `root` except the work dir: what a hostile archive must not change. */
function snapshot(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (p === work) continue;
      out.push(relative(root, p));
      if (statSync(p, { throwIfNoEntry: false })?.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out.sort();
}

let caseNo = 0;
function caseDir(name: string): string {
  const d = join(work, `${String(caseNo++).padStart(2, '0')}-${name}`);
  mkdirSync(d, { recursive: true });
  return d;
}

/** Unpacks `bytes` saved as `fileName` in a fresh work dir; returns the error it fails with. */
async function refusal(fileName: string, bytes: Buffer, l: UnpackLimits = limits): Promise<FodderError> {
  const d = caseDir(fileName);
  const archive = join(d, fileName);
  writeFileSync(archive, bytes);
  const before = snapshot();
  const err = await unpackArchive(archive, join(d, 'unpack'), unpackMethodFor(fileName)!, { limits: l }).then(
    () => {
      throw new Error(`${fileName} was unpacked`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FodderError);
  expect(existsSync(join(d, 'unpack')), 'the unpack dir is removed').toBe(false);
  expect(snapshot(), 'nothing changed outside the work dir').toEqual(before);
  expect(readdirSync(outside)).toEqual([]);
  return err as FodderError;
}

/** What nixpkgs' fetchzip does, by the real tools: unpackFile, chmod -R +w, stripRoot, chmod 755, nix-hash. */
function fetchzipReference(archive: string, fileName: string, stripRoot: boolean): string {
  const d = tempDir('fodder-ref-');
  const script = `
    set -e
    cd "${d}"; mkdir unpack; cd unpack
    cp "${archive}" "../${fileName}"
    case "${fileName}" in
      *.tar.xz|*.tar.lzma|*.txz) (xz -d < "../${fileName}"; true) | tar xf - --mode=+w --warning=no-timestamp ;;
      *.zip) LANG=C.UTF-8 unzip -qq "../${fileName}" ;;
      *) tar xf "../${fileName}" --mode=+w --warning=no-timestamp ;;
    esac
    cd ..; chmod -R +w unpack
    if [ ${stripRoot ? 1 : 0} = 1 ]; then
      [ "$(ls -A unpack | wc -l)" = 1 ] || exit 3
      fn=$(cd unpack && ls -A)
      if [ -f "unpack/$fn" ]; then mkdir out; fi
      mv "unpack/$fn" out
    else mv unpack out; fi
    chmod 755 out
    nix-hash --type sha256 out`;
  return execFileSync('bash', ['-c', script], { encoding: 'utf8' }).trim();
}

async function fodderTree(archive: string, fileName: string, stripRoot: boolean): Promise<string> {
  const d = caseDir(`ok-${fileName}`);
  await unpackArchive(archive, join(d, 'unpack'), unpackMethodFor(fileName)!, { limits });
  await placeUnpacked(join(d, 'unpack'), join(d, 'out'), stripRoot);
  return (await narHash(join(d, 'out'))).hex;
}

beforeAll(() => {
  mkdirSync(outside, { recursive: true });
  mkdirSync(work, { recursive: true });
});

afterAll(() => {
  execFileSync('rm', ['-rf', root]);
});

describe('the unpacked tree is the one fetchzip makes', () => {
  const src = tempDir('fodder-tricky-');
  const top = join(src, 'tricky-1.0');
  const archives: Record<string, string> = {};

  beforeAll(() => {
    // legal content that is easy to get wrong: modes, links of every kind, odd names, depth
    mkdirSync(join(top, 'bin'), { recursive: true });
    mkdirSync(join(top, 'empty-dir'));
    mkdirSync(join(top, 'a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p'), { recursive: true });
    writeFileSync(join(top, 'bin', 'run'), '#!/bin/sh\necho run\n');
    chmodSync(join(top, 'bin', 'run'), 0o755);
    writeFileSync(join(top, 'owner-exec-only'), 'x');
    chmodSync(join(top, 'owner-exec-only'), 0o700);
    writeFileSync(join(top, 'group-exec-only'), 'x');
    chmodSync(join(top, 'group-exec-only'), 0o654);
    writeFileSync(join(top, 'read-only'), 'ro');
    chmodSync(join(top, 'read-only'), 0o444);
    writeFileSync(join(top, 'empty'), '');
    writeFileSync(join(top, 'héllo wörld ☃.txt'), 'utf-8 name\n');
    writeFileSync(join(top, 'a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p', 'a-file-with-a-long-name-that-pushes-the-path-past-one-hundred-bytes.txt'), 'deep\n');
    symlinkSync('bin/run', join(top, 'relative-link'));
    symlinkSync('does/not/exist', join(top, 'dangling-link'));
    symlinkSync('/etc/passwd', join(top, 'absolute-link'));
    symlinkSync('../tricky-1.0/README', join(top, 'dotdot-inside-link'));
    writeFileSync(join(top, 'README'), 'tricky 1.0\n');
    linkSync(join(top, 'README'), join(top, 'README.hardlink'));
    mkdirSync(join(top, 'locked-dir'));
    writeFileSync(join(top, 'locked-dir', 'inside'), 'inside a 0500 directory\n');
    chmodSync(join(top, 'locked-dir'), 0o500);
    const t = (flag: string, name: string) => {
      archives[name] = join(src, name);
      execFileSync('tar', ['--sort=name', '--format=gnu', flag, '-cf', archives[name], '-C', src, 'tricky-1.0'].filter(Boolean));
    };
    t('-z', 'tricky-1.0.tar.gz');
    t('-J', 'tricky-1.0.tar.xz');
    t('-j', 'tricky-1.0.tar.bz2');
    t('--zstd', 'tricky-1.0.tar.zst');
    t('', 'tricky-1.0.tar');
    archives['v1.0.tgz'] = join(src, 'v1.0.tgz');
    execFileSync('tar', ['--format=posix', '-czf', archives['v1.0.tgz'], '-C', src, 'tricky-1.0']); // pax headers
    archives['tricky-1.0.zip'] = join(src, 'tricky-1.0.zip');
    execFileSync('zip', ['-q', '-r', '-y', archives['tricky-1.0.zip'], 'tricky-1.0'], { cwd: src });
  });

  for (const name of ['tricky-1.0.tar.gz', 'tricky-1.0.tar.xz', 'tricky-1.0.tar.bz2', 'tricky-1.0.tar.zst', 'tricky-1.0.tar', 'v1.0.tgz', 'tricky-1.0.zip']) {
    test(`${name}: fodder's NAR hash equals tar/unzip + nix-hash`, async () => {
      expect(await fodderTree(archives[name], name, true)).toBe(fetchzipReference(archives[name], name, true));
    });
  }

  test('stripRoot = false keeps the top directory; the hashes still agree', async () => {
    const a = archives['tricky-1.0.tar.gz'];
    expect(await fodderTree(a, 'x.tar.gz', false)).toBe(fetchzipReference(a, 'x.tar.gz', false));
  });

  test('stripRoot with a single file at the top puts it in a new directory, as fetchzip does', async () => {
    const a = join(caseDir('single'), 'single.tar.gz');
    writeFileSync(a, tarGz([{ name: 'only-file.txt', data: 'alone\n' }]));
    expect(await fodderTree(a, 'single.tar.gz', true)).toBe(fetchzipReference(a, 'single.tar.gz', true));
  });

  test('stripRoot with two top-level entries fails, as fetchzip does', async () => {
    const d = caseDir('two-tops');
    const a = join(d, 'two.tar.gz');
    writeFileSync(
      a,
      tarGz([
        { name: 'one/a', data: 'a' },
        { name: 'two/b', data: 'b' },
      ]),
    );
    await unpackArchive(a, join(d, 'unpack'), { tool: 'tar' });
    await expect(placeUnpacked(join(d, 'unpack'), join(d, 'out'), true)).rejects.toMatchObject({ code: UnpackErrorCode.STRIP_ROOT });
    expect(() => fetchzipReference(a, 'two.tar.gz', true)).toThrow();
  });

  test('the file name picks the tool exactly as unpackFile does', () => {
    expect(unpackMethodFor('v1.2.0.tar.gz')).toEqual({ tool: 'tar' });
    expect(unpackMethodFor('x.tgz')).toEqual({ tool: 'tar' });
    expect(unpackMethodFor('x.tbz2')).toEqual({ tool: 'tar' });
    expect(unpackMethodFor('archive.tar.gz?sha=abc')).toEqual({ tool: 'tar' });
    expect(unpackMethodFor('x.tar.xz')).toEqual({ tool: 'xz-tar' });
    expect(unpackMethodFor('x.txz')).toEqual({ tool: 'xz-tar' });
    expect(unpackMethodFor('x.tar.lzma')).toEqual({ tool: 'xz-tar' });
    expect(unpackMethodFor('x.zip')).toEqual({ tool: 'unzip' });
    expect(unpackMethodFor('x.ZIP')).toBeNull();
    expect(unpackMethodFor('x.7z')).toBeNull();
    expect(unpackMethodFor('download')).toBeNull();
  });
});

describe('hostile tar archives are refused and nothing is written outside the work dir', () => {
  test('a `../` entry (path traversal)', async () => {
    const e = await refusal(
      'dotdot.tar.gz',
      tarGz([
        { name: 'pkg/README', data: 'ok' },
        { name: '../../outside/escaped.txt', data: 'pwned' },
      ]),
    );
    expect(e.code).toBe(UnpackErrorCode.UNSAFE);
    expect(e.fields.rule).toBe('dot-dot');
  });

  test('a `..` in the middle of a name', async () => {
    const e = await refusal('middle.tar.gz', tarGz([{ name: 'pkg/a/../../../outside/x', data: 'pwned' }]));
    expect(e.fields.rule).toBe('dot-dot');
  });

  test('an absolute name', async () => {
    const e = await refusal('absolute.tar.gz', tarGz([{ name: `${outside}/absolute.txt`, data: 'pwned' }]));
    expect(e.fields.rule).toBe('absolute');
    expect(existsSync(join(outside, 'absolute.txt'))).toBe(false);
  });

  test('an absolute name hidden in a GNU long name', async () => {
    const long = `${outside}/${'x'.repeat(120)}`;
    const e = await refusal('longname.tar.gz', tarGz([{ name: long, data: 'pwned' }]));
    expect(e.fields.rule).toBe('absolute');
  });

  test('a symlink to the outside, then a file written through it', async () => {
    const e = await refusal(
      'symlink-abs.tar.gz',
      tarGz([
        { name: 'pkg/', type: '5' },
        { name: 'pkg/link', type: '2', linkname: outside },
        { name: 'pkg/link/pwned.txt', data: 'pwned' },
      ]),
    );
    expect(e.code).toBe(UnpackErrorCode.UNSAFE);
    expect(e.fields.rule).toBe('symlink-escape');
  });

  test('a relative symlink climbing out, then a directory and a file through it', async () => {
    const e = await refusal(
      'symlink-rel.tar.gz',
      tarGz([
        { name: 'pkg/up', type: '2', linkname: '../../../outside' },
        { name: 'pkg/up/sub/', type: '5' },
        { name: 'pkg/up/sub/pwned.txt', data: 'pwned' },
      ]),
    );
    expect(e.fields.rule).toBe('symlink-escape');
  });

  test('a symlink replaced by a file of the same name', async () => {
    const e = await refusal(
      'symlink-replace.tar.gz',
      tarGz([
        { name: 'pkg/f', type: '2', linkname: `${outside}/target` },
        { name: 'pkg/f', data: 'written through the link?' },
      ]),
    );
    expect(e.fields.rule).toBe('symlink-replace');
  });

  test('a hard link to a file outside the archive', async () => {
    writeFileSync(join(root, 'victim'), 'victim');
    const e = await refusal('hardlink.tar.gz', tarGz([{ name: 'pkg/hl', type: '1', linkname: join(root, 'victim') }]));
    expect(e.fields.rule).toBe('absolute');
    const e2 = await refusal('hardlink2.tar.gz', tarGz([{ name: 'pkg/hl', type: '1', linkname: '../victim' }]));
    expect(e2.fields.rule).toBe('dot-dot');
    const e3 = await refusal('hardlink3.tar.gz', tarGz([{ name: 'pkg/hl', type: '1', linkname: 'pkg/not-in-archive' }]));
    expect(e3.fields.rule).toBe('hardlink-outside');
  });

  test('device files and fifos', async () => {
    expect((await refusal('chardev.tar.gz', tarGz([{ name: 'pkg/null', type: '3' }]))).fields.rule).toBe('device');
    expect((await refusal('blockdev.tar.gz', tarGz([{ name: 'pkg/sda', type: '4' }]))).fields.rule).toBe('device');
    expect((await refusal('fifo.tar.gz', tarGz([{ name: 'pkg/pipe', type: '6' }]))).fields.rule).toBe('fifo');
  });

  test('a sparse file is not unpacked (unsupported, not unsafe)', async () => {
    const e = await refusal('sparse.tar.gz', tarGz([{ name: 'pkg/sparse', type: 'S', size: 0 }]));
    expect(e.code).toBe(UnpackErrorCode.UNSUPPORTED);
  });

  test('a decompression bomb (1 GiB of zeros in 1 MiB of gzip) stops at the cap', async () => {
    const d = caseDir('bomb');
    const file = join(d, 'bomb.tar.gz');
    const gib = 1 << 30;
    async function* body() {
      const head = tar([{ name: 'pkg/zeros', size: gib }]).subarray(0, 512);
      yield head;
      const zeros = Buffer.alloc(1 << 20);
      for (let i = 0; i < gib / zeros.length; i++) yield zeros;
      yield Buffer.alloc(1024);
    }
    await pipeline(Readable.from(body()), createGzip({ level: 1 }), createWriteStream(file));
    expect(statSync(file).size).toBeLessThan(8 << 20);
    const e = await refusal('bomb.tar.gz', (await import('node:fs')).readFileSync(file));
    expect(e.code).toBe(UnpackErrorCode.TOO_LARGE);
    // refused at the entry's header, which declares the gigabyte, not by the walk of what tar wrote
    expect(e.fields).toMatchObject({ entry: 'pkg/zeros', maxBytes: limits.maxBytes });
  });

  test('a bomb of hard links to one large file', async () => {
    const items = [
      { name: 'pkg/big', data: Buffer.alloc(4 << 20, 1) },
      ...Array.from({ length: 40 }, (_, i) => ({ name: `pkg/l${i}`, type: '1', linkname: 'pkg/big' })),
    ];
    const e = await refusal('hardlink-bomb.tar.gz', tarGz(items));
    expect(e.code).toBe(UnpackErrorCode.TOO_LARGE);
  });

  test('a bomb of many empty files stops at the entry cap', async () => {
    const items = Array.from({ length: 6000 }, (_, i) => ({ name: `pkg/f${i}`, data: '' }));
    const e = await refusal('many.tar.gz', tarGz(items));
    expect(e.code).toBe(UnpackErrorCode.TOO_LARGE);
  });

  test('garbage is not a tar archive (a failure, not a refusal)', async () => {
    const e = await refusal('garbage.tar.gz', (await import('node:zlib')).gzipSync(Buffer.from('<html>this is not an archive</html>\n'.repeat(40))));
    expect(e.code).toBe(UnpackErrorCode.FAILED);
  });
});

describe('hostile zip archives are refused and nothing is written outside the work dir', () => {
  test('a `../` name', async () => {
    const e = await refusal(
      'dotdot.zip',
      zip([
        { name: 'pkg/ok', data: 'ok' },
        { name: '../../outside/escaped.txt', data: 'pwned' },
      ]),
    );
    expect(e.fields.rule).toBe('dot-dot');
  });

  test('an absolute name', async () => {
    const e = await refusal('absolute.zip', zip([{ name: `${outside}/abs.txt`, data: 'pwned' }]));
    expect(e.fields.rule).toBe('absolute');
  });

  test('a symlink to the outside, then a file through it', async () => {
    const e = await refusal(
      'symlink.zip',
      zip([
        { name: 'pkg/link', data: outside, mode: 0o120777 },
        { name: 'pkg/link/pwned.txt', data: 'pwned' },
      ]),
    );
    expect(e.fields.rule).toBe('symlink-escape');
  });

  test('a fifo entry', async () => {
    expect((await refusal('fifo.zip', zip([{ name: 'pkg/p', mode: 0o010644 }]))).fields.rule).toBe('fifo');
  });

  test('declared sizes past the cap (a zip bomb) are refused before unzip runs', async () => {
    const e = await refusal('bomb.zip', zip(Array.from({ length: 100 }, (_, i) => ({ name: `pkg/f${i}`, data: 'x', declaredSize: 1 << 30 }))));
    expect(e.code).toBe(UnpackErrorCode.TOO_LARGE);
  });

  test('an entry that lies about its size is cut off by the file size limit', async () => {
    const e = await refusal('liar.zip', zip([{ name: 'pkg/big', data: Buffer.alloc(3 << 20, 7), declaredSize: 10 }]), { maxBytes: 1 << 20, maxEntries: 10 });
    expect([UnpackErrorCode.TOO_LARGE, UnpackErrorCode.FAILED]).toContain(e.code);
  });

  test('an encrypted entry is unsupported', async () => {
    const e = await refusal('encrypted.zip', zip([{ name: 'pkg/secret', data: 'xxxx', encrypted: true }]));
    expect(e.code).toBe(UnpackErrorCode.UNSUPPORTED);
  });
});
