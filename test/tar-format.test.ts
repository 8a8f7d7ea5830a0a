/**
 * The tar writer and reader of bundles (src/mirror/tar-format.ts) against GNU tar: what fodder
 * writes GNU tar lists and extracts byte for byte (long names through pax, sizes from 8 GiB),
 * and what GNU tar writes (ustar, pax, GNU long names) fodder reads, down to a bundle import.
 */
import { describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, existsSync, mkdirSync, openSync, readFileSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BUNDLE_FORMAT, formatBundleIndex, type BundleObject } from '../src/mirror/bundle-index.js';
import { importBundle } from '../src/mirror/bundle-import.js';
import { verifyMirror } from '../src/mirror/verify.js';
import { encodeNix32 } from '../src/nix-formats/hash.js';
import { TAR_END, tarFileHeader, tarFileMembers, tarPadding } from '../src/mirror/tar-format.js';
import { tempDir } from './helpers/cli.js';

const dir = tempDir('fodder-tar-');
const tar = (...args: string[]) => {
  const r = spawnSync('tar', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

/** names a ustar header holds, one that needs its prefix field, and ones only pax holds */
const files: [string, Buffer][] = [
  ['bundle.json', Buffer.from('{}\n')],
  ['tarballs/sha256/' + 'a'.repeat(64), randomBytes(1000)],
  ['tarballs/sha512/' + 'b'.repeat(128), randomBytes(512)],
  [`${'d'.repeat(120)}/${'e'.repeat(90)}`, randomBytes(0)],
  [`cache/${'f'.repeat(100)}/${'f'.repeat(200)}.narinfo`, randomBytes(70_000)],
  ['cache/nar/été.nar', randomBytes(3)],
];

function writeArchive(path: string, members: [string, Buffer][]): void {
  const fd = openSync(path, 'w');
  for (const [name, data] of members) {
    writeSync(fd, tarFileHeader(name, data.length));
    writeSync(fd, data);
    writeSync(fd, Buffer.alloc(tarPadding(data.length)));
  }
  writeSync(fd, TAR_END);
  closeSync(fd);
}

async function membersOf(path: string): Promise<[string, Buffer][]> {
  const whole = readFileSync(path);
  const out: [string, Buffer][] = [];
  for await (const m of tarFileMembers(path)) if (m.type === '0') out.push([m.name, whole.subarray(m.offset, m.offset + m.size)]);
  return out;
}

describe('the tar writer', () => {
  test('GNU tar lists and extracts what it writes, long names and all, byte for byte', () => {
    const archive = join(dir, 'w.tar');
    writeArchive(archive, files);
    expect(tar('-tf', archive).split('\n').filter(Boolean)).toEqual(files.map(([n]) => n));
    const out = join(dir, 'w-out');
    mkdirSync(out);
    tar('-xf', archive, '-C', out);
    for (const [name, data] of files) expect(readFileSync(join(out, name)).equals(data), name).toBe(true);
  });

  test('a member of 9 GiB: base-256 and pax size, listed by GNU tar and read back (a sparse archive)', async () => {
    const size = 9 * 2 ** 30;
    const header = tarFileHeader('tarballs/sha256/' + 'c'.repeat(64), size);
    const archive = join(dir, 'big.tar');
    writeFileSync(archive, header);
    truncateSync(archive, header.length + size + tarPadding(size) + TAR_END.length);
    const listing = tar('-tvf', archive);
    expect(listing).toContain(String(size));
    expect(listing).toContain('c'.repeat(64));
    const members = [];
    for await (const m of tarFileMembers(archive)) members.push(m);
    expect(members.map((m) => [m.name, m.size, m.offset])).toEqual([['tarballs/sha256/' + 'c'.repeat(64), size, header.length]]);
  });

  test('a header with a bad checksum is an error, not a member', async () => {
    const archive = join(dir, 'bad.tar');
    writeArchive(archive, files.slice(0, 2));
    const bytes = readFileSync(archive);
    bytes[1024 + 10] ^= 0x01; // the second header's name (the first member's 3 bytes take a block)
    writeFileSync(archive, bytes);
    await expect(membersOf(archive)).rejects.toThrow(/bad checksum at byte 1024/);
  });

  test('a checksum summed over signed bytes, as old tars wrote it, is good, as GNU tar takes it', async () => {
    const archive = join(dir, 'signed.tar');
    writeArchive(archive, [['cache/nar/été.nar', Buffer.from('abc')]]);
    const bytes = readFileSync(archive);
    let signed = 0;
    for (let i = 0; i < 512; i++) signed += i >= 148 && i < 156 ? 0x20 : bytes[i] > 127 ? bytes[i] - 256 : bytes[i];
    bytes.write(signed.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
    writeFileSync(archive, bytes);
    tar('-tf', archive); // GNU tar lists it
    expect(await membersOf(archive)).toEqual([['cache/nar/été.nar', Buffer.from('abc')]]);
  });
});

describe('the tar reader', () => {
  const src = join(dir, 'src');
  for (const [name, data] of files) {
    mkdirSync(dirname(join(src, name)), { recursive: true });
    writeFileSync(join(src, name), data);
  }
  for (const format of ['gnu', 'pax', 'posix', 'ustar']) {
    test(`reads GNU tar's --format=${format}`, async () => {
      const archive = join(dir, `${format}.tar`);
      // ustar cannot hold the long names: GNU tar leaves them out (and says so)
      spawnSync('tar', [`--format=${format}`, '-cf', archive, '-C', src, ...files.map(([n]) => n)]);
      const names = tar('-tf', archive).split('\n').filter(Boolean);
      expect(names.length).toBeGreaterThanOrEqual(format === 'ustar' ? 4 : files.length);
      const got = await membersOf(archive);
      expect(got.map(([n]) => n)).toEqual(names);
      for (const [name, data] of got) expect(data.equals(readFileSync(join(src, name))), name).toBe(true);
    });
  }

  test('a bundle packed by GNU tar imports: every object verified and in the mirror', async () => {
    const b = join(dir, 'bundle');
    const objects: BundleObject[] = [];
    for (const algo of ['sha256', 'sha512'] as const) {
      const data = randomBytes(200_000);
      const hex = createHash(algo).update(data).digest('hex');
      mkdirSync(join(b, 'tarballs', algo), { recursive: true });
      writeFileSync(join(b, 'tarballs', algo, hex), data);
      objects.push({ type: 'tarball', path: `tarballs/${algo}/${hex}`, size: data.length });
    }
    writeFileSync(
      join(b, 'bundle.json'),
      formatBundleIndex({ format: BUNDLE_FORMAT, createdAt: new Date(0).toISOString(), volume: null, volumes: 1, objects }),
    );
    for (const format of ['gnu', 'pax']) {
      const archive = join(dir, `bundle-${format}.tar`);
      tar(`--format=${format}`, '-cf', archive, '-C', b, 'bundle.json', 'tarballs');
      // a file (read by position) and a stream
      for (const [how, source] of [
        ['file', archive],
        ['stream', createReadStream(archive)],
      ] as const) {
        const mirror = join(dir, `mirror-${format}-${how}`);
        const r = await importBundle(source, { mirrorDir: mirror, trustedKeys: [], priority: 40 });
        expect(r, how).toMatchObject({ imported: 2, refused: [] });
        for (const o of objects) expect(readFileSync(join(mirror, o.path)).equals(readFileSync(join(b, o.path))), o.path).toBe(true);
      }
    }
    // the import checks and names by the object's own hash and sha256; `fodder verify` adds the rest
    const mirror = join(dir, 'mirror-gnu-file');
    const [sha256Object] = objects;
    const data = readFileSync(join(b, sha256Object.path));
    const md5 = join(mirror, 'tarballs', 'md5', createHash('md5').update(data).digest('hex'));
    expect(existsSync(join(mirror, 'tarballs', 'sha256', encodeNix32(createHash('sha256').update(data).digest())))).toBe(true);
    expect(existsSync(md5)).toBe(false);
    const v = await verifyMirror(mirror);
    expect(v).toMatchObject({ files: 2, corrupt: [] });
    expect(v.repaired).toBeGreaterThan(0);
    expect(readFileSync(md5).equals(data)).toBe(true);
  });
});
