/**
 * Flat sources' NARs made from the hashed mirror's files (src/mirror/flat-nar.ts): the framing
 * is what `nix-store --dump` writes around a file; the narinfo `addFlat` writes names a NAR
 * whose hash and size are the dump's; `fodder serve` (the built CLI, on a free loopback port)
 * sends it whole, by HEAD, and by ranges across the prefix, the file and the suffix, each
 * compared with slices of `nix-store --dump`; malformed names and absent files are 404s.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash, randomFillSync } from 'node:crypto';
import { basename, join } from 'node:path';
import { flatNarFrame, narFromBuffer } from '../src/nix-formats/nar.js';
import { encodeNix32 } from '../src/nix-formats/hash.js';
import { parseNarInfo } from '../src/nix-formats/narinfo.js';
import { createHashedMirror } from '../src/mirror/hashed-mirror.js';
import { createHashPool, flatNarDigests } from '../src/mirror/hashing.js';
import { addFlatSource, createBinaryCache } from '../src/mirror/binary-cache.js';
import { flatNarSha256, flatNarUrl } from '../src/mirror/flat-nar.js';
import { verifyMirror } from '../src/mirror/verify.js';
import { byteRange } from '../src/serve/send-file.js';
import type { Digests } from '../src/mirror/types.js';
import { FIXTURE, tempDir } from './helpers/cli.js';
import { flatFod } from './helpers/fetch-db.js';
import type { Fod } from '../src/graph/types.js';
import { startServe, type RunningService } from './helpers/service.js';

const dir = tempDir('fodder-flatnar-');
const dump = (p: string) => execFileSync('nix-store', ['--dump', p], { maxBuffer: 1 << 26 });
const digestsOf = (b: Buffer) => Object.fromEntries(['md5', 'sha1', 'sha256', 'sha512'].map((a) => [a, createHash(a).update(b).digest('hex')])) as Digests;

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the NAR of one regular file', () => {
  test.each([0, 1, 7, 8, 9, 4096, 70_000])('%i bytes: prefix ‖ contents ‖ suffix is nix-store --dump, executable and not', (size) => {
    const contents = randomFillSync(Buffer.alloc(size));
    for (const executable of [false, true]) {
      const file = join(dir, `f-${size}-${executable}`);
      writeFileSync(file, contents);
      chmodSync(file, executable ? 0o755 : 0o644);
      const { prefix, suffix, narSize } = flatNarFrame(size, executable);
      const nar = dump(file);
      expect(Buffer.concat([prefix, contents, suffix]).equals(nar)).toBe(true);
      expect(narSize).toBe(nar.length);
      expect(narFromBuffer(contents, executable).equals(nar)).toBe(true);
    }
  });

  test('flatNarDigests, on the calling thread and on a pool thread, give the dump hash and size and the file sha256', async () => {
    const pool = createHashPool();
    try {
      for (const size of [0, 9, 3 << 20]) {
        const file = join(dir, `d-${size}`);
        const contents = randomFillSync(Buffer.alloc(size));
        writeFileSync(file, contents);
        const nar = dump(file);
        const want = {
          sha256: createHash('sha256').update(contents).digest('hex'),
          narHash: createHash('sha256').update(nar).digest('hex'),
          narSize: nar.length,
        };
        expect(await flatNarDigests(file, size)).toEqual(want);
        expect(await flatNarDigests(file, size, pool)).toEqual(want);
      }
    } finally {
      await pool.close();
    }
  });

  test('a flat NAR name is exactly the nix32 sha256 flatNarUrl writes', () => {
    const hex = createHash('sha256').update('x').digest('hex');
    const url = flatNarUrl(hex);
    expect(url).toMatch(/^nar\/flat\/[0-9a-z]{52}\.nar$/);
    expect(flatNarSha256(url.slice('nar/flat/'.length))).toBe(hex);
    for (const bad of [
      '',
      '..',
      `${'0'.repeat(52)}.nar.xz`,
      `${'0'.repeat(51)}.nar`,
      `${'e'.repeat(52)}.nar`,
      `${'z'.repeat(52)}.nar`,
      `${hex}.nar`,
      `../${'0'.repeat(49)}.nar`,
    ]) {
      expect(flatNarSha256(bad), bad).toBeNull();
    }
  });

  test('byteRange: one range, suffix ranges, the unsatisfiable and the ignored', () => {
    expect(byteRange(undefined, 10)).toBeNull();
    expect(byteRange('bytes=0-3', 10)).toEqual({ start: 0, end: 3 });
    expect(byteRange('bytes=5-', 10)).toEqual({ start: 5, end: 9 });
    expect(byteRange('bytes=5-100', 10)).toEqual({ start: 5, end: 9 });
    expect(byteRange('bytes=-4', 10)).toEqual({ start: 6, end: 9 });
    expect(byteRange('bytes=-40', 10)).toEqual({ start: 0, end: 9 });
    expect(byteRange('bytes=10-', 10)).toBe('unsatisfiable');
    expect(byteRange('bytes=-0', 10)).toBe('unsatisfiable');
    expect(byteRange('bytes=4-2', 10)).toBeNull();
    expect(byteRange('bytes=0-1,4-5', 10)).toBeNull();
    expect(byteRange('items=0-1', 10)).toBeNull();
  });
});

describe('fodder serve sends flat NARs made from tarballs/', () => {
  const mirrorDir = join(dir, 'mirror');
  const files: { name: string; bytes: Buffer; fod: Fod; sha256: string }[] = [];
  let service: RunningService;

  beforeAll(async () => {
    const mirror = createHashedMirror(mirrorDir);
    const cache = createBinaryCache({ mirrorDir, compression: 'none', secretKey: null, priority: 30, flat: false });
    for (const size of [0, 1, 7, 8, 9, (2 << 20) + 3]) {
      const bytes = randomFillSync(Buffer.alloc(size));
      const tmp = join(mirrorDir, 'tmp', 'incoming');
      writeFileSync(tmp, bytes);
      const d = digestsOf(bytes);
      const stored = await mirror.admitFile(tmp, d);
      const name = `file-${size}.bin`;
      const fod = flatFod(name, d.sha256);
      const e = await addFlatSource(cache, fod, stored, d);
      expect(e.existed).toBe(false);
      files.push({ name, bytes, fod, sha256: d.sha256 });
    }
    writeFileSync(join(dir, 'token'), 'flat-nar-test-token-0123456789\n');
    const config = join(dir, 'fodder.yaml');
    writeFileSync(config, `nixpkgs: ${FIXTURE}\ndb: fodder.db\nfetch:\n  mirror: mirror\nservice:\n  listen: 127.0.0.1:0\n  tokenFile: token\n`);
    service = await startServe(config, '--no-schedule');
  }, 60_000);

  afterAll(async () => {
    service?.proc.kill('SIGTERM');
    await service?.proc;
  });

  test('the narinfo (cache/flat/, none in the cache itself) names a NAR equal to nix-store --dump of the stored file', async () => {
    for (const f of files) {
      const hashPart = f.fod.outPath.slice('/nix/store/'.length, '/nix/store/'.length + 32);
      expect(existsSync(join(mirrorDir, 'cache', `${hashPart}.narinfo`))).toBe(false);
      const res = await fetch(`${service.url}/${hashPart}.narinfo`);
      expect(res.status).toBe(200);
      const info = parseNarInfo(await res.text());
      expect(info.url).toBe(flatNarUrl(f.sha256));
      expect(info.compression).toBe('none');
      const stored = join(mirrorDir, 'tarballs', 'sha256', f.sha256);
      const nar = dump(stored);
      expect(info.narSize).toBe(nar.length);
      expect(info.fileSize).toBe(nar.length);
      expect(info.narHash.hex).toBe(createHash('sha256').update(nar).digest('hex'));
      expect(info.ca).toBe(`fixed:sha256:${encodeNix32(Buffer.from(f.sha256, 'hex'))}`);

      const get = await fetch(`${service.url}/${info.url}`);
      expect(get.status).toBe(200);
      expect(get.headers.get('content-type')).toBe('application/x-nix-nar');
      expect(get.headers.get('content-length')).toBe(String(nar.length));
      expect(get.headers.get('cache-control')).toMatch(/immutable/);
      expect(get.headers.get('accept-ranges')).toBe('bytes');
      expect(Buffer.from(await get.arrayBuffer()).equals(nar)).toBe(true);

      const head = await fetch(`${service.url}/${info.url}`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-length')).toBe(String(nar.length));
      expect((await head.arrayBuffer()).byteLength).toBe(0);

      const etag = get.headers.get('etag')!;
      expect(etag).toMatch(/^"[0-9a-z]{52}"$/);
      const conditional = await fetch(`${service.url}/${info.url}`, { headers: { 'if-none-match': etag } });
      expect(conditional.status).toBe(304);
    }
  });

  test('ranges inside and across the prefix, the file and the suffix are slices of nix-store --dump; past the end is a 416', async () => {
    for (const f of files) {
      const url = `${service.url}/${flatNarUrl(f.sha256)}`;
      const nar = dump(join(mirrorDir, 'tarballs', 'sha256', f.sha256));
      const p = flatNarFrame(f.bytes.length).prefix.length;
      const n = nar.length;
      const ranges: [number, number | null][] = [
        [0, 0],
        [0, p - 1],
        [p - 3, p + 2],
        [p, p],
        [p - 1, n - 1],
        [5, n - 1],
        [n - 9, n - 1],
        [n - 1, n - 1],
        [p + f.bytes.length - 2, p + f.bytes.length + 1],
        [p + 1, null],
        [0, n + 100],
      ];
      for (const [a, b] of ranges) {
        if (a < 0 || a >= n) continue;
        const res = await fetch(url, { headers: { range: `bytes=${a}-${b ?? ''}` } });
        const end = Math.min(b ?? n - 1, n - 1);
        expect(res.status, `${f.name} ${a}-${b}`).toBe(206);
        expect(res.headers.get('content-range')).toBe(`bytes ${a}-${end}/${n}`);
        expect(res.headers.get('content-length')).toBe(String(end - a + 1));
        expect(Buffer.from(await res.arrayBuffer()).equals(nar.subarray(a, end + 1)), `${f.name} ${a}-${b}`).toBe(true);
      }
      const last = await fetch(url, { headers: { range: 'bytes=-5' } });
      expect(Buffer.from(await last.arrayBuffer()).equals(nar.subarray(n - 5))).toBe(true);
      const past = await fetch(url, { headers: { range: `bytes=${n}-` } });
      expect(past.status).toBe(416);
      expect(past.headers.get('content-range')).toBe(`bytes */${n}`);
      expect(((await past.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
      const stale = await fetch(url, { headers: { range: 'bytes=0-0', 'if-range': '"other"' } });
      expect(stale.status).toBe(200);
      expect(Buffer.from(await stale.arrayBuffer()).equals(nar)).toBe(true);
    }
  });

  test('a malformed name or an absent file is a 404 with a JSON error, and reads nothing', async () => {
    const absent = createHash('sha256').update('not in the mirror').digest('hex');
    const hex = files[1].sha256;
    for (const path of [
      `/${flatNarUrl(absent)}`,
      `/nar/flat/${hex}.nar`,
      `/nar/flat/${encodeNix32(Buffer.from(hex, 'hex'))}.nar.xz`,
      `/nar/flat/${encodeNix32(Buffer.from(hex, 'hex'))}`,
      `/nar/flat/${'z'.repeat(52)}.nar`,
      '/nar/flat/..%2F..%2F..%2Fetc%2Fpasswd',
      `/${'3'.repeat(32)}.narinfo`,
    ]) {
      const res = await fetch(`${service.url}${path}`);
      expect(res.status, path).toBe(404);
      const body = (await res.json()) as { error: { code: string } };
      expect(body.error.code).toBe('NOT_FOUND');
    }
  });

  test('a flat source whose file left tarballs/ is a 404 for its NAR', async () => {
    const f = files[2];
    const stored = join(mirrorDir, 'tarballs', 'sha256', f.sha256);
    const kept = join(dir, 'kept');
    cpSync(stored, kept);
    rmSync(stored);
    try {
      expect((await fetch(`${service.url}/${flatNarUrl(f.sha256)}`)).status).toBe(404);
    } finally {
      cpSync(kept, stored);
    }
    expect(readFileSync(stored).equals(f.bytes)).toBe(true);
  });
});

describe('fodder verify checks flat narinfos against their files', () => {
  test('a narinfo whose NAR hash is wrong, whose file is gone, or whose URL names another file than its CA, is quarantined; the others pass', async () => {
    const mirrorDir = join(dir, 'mirror-verify');
    const mirror = createHashedMirror(mirrorDir);
    const cache = createBinaryCache({ mirrorDir, compression: 'none', secretKey: null, priority: 30, flat: false });
    const entries = [];
    for (const size of [3, 20, 2 << 20, 5]) {
      const bytes = randomFillSync(Buffer.alloc(size));
      const tmp = join(mirrorDir, 'tmp', 'incoming');
      writeFileSync(tmp, bytes);
      const d = digestsOf(bytes);
      await mirror.admitFile(tmp, d);
      entries.push({ e: await cache.addFlat(flatFod(`v-${size}`, d.sha256), d), sha256: d.sha256 });
    }
    const good = await verifyMirror(mirrorDir);
    expect([good.narInfos, good.badNarInfos]).toEqual([4, []]);

    const [wrong, gone, other, relabelled] = entries;
    // the NAR of another file (URL, hashes and sizes all of that file's), under this store path and CA
    const fields = /^(URL|FileHash|FileSize|NarHash|NarSize): .*$/gm;
    const otherText = readFileSync(other.e.narInfoFile, 'utf8');
    writeFileSync(
      relabelled.e.narInfoFile,
      readFileSync(relabelled.e.narInfoFile, 'utf8').replace(fields, (line) => otherText.match(new RegExp(`^${line.split(':')[0]}: .*$`, 'm'))![0]),
    );
    const text = readFileSync(wrong.e.narInfoFile, 'utf8');
    writeFileSync(
      wrong.e.narInfoFile,
      text.replace(/^NarHash: sha256:(\S)/m, (_m, c: string) => `NarHash: sha256:${c === '0' ? '1' : '0'}`),
    );
    for (const a of aliasesOf(mirrorDir, gone.sha256)) rmSync(a);
    const r = await verifyMirror(mirrorDir);
    expect(r.narInfos).toBe(4);
    const bad = [wrong, gone, relabelled].map((x) => `cache/flat/${basename(x.e.narInfoFile)}`);
    expect(r.badNarInfos.map((b) => b.name).sort()).toEqual(bad.sort());
    expect(r.badNarInfos.find((b) => b.name.endsWith(basename(relabelled.e.narInfoFile)))!.reason).toBe(
      `its CA names sha256:${relabelled.sha256}, which tarballs/sha256/${other.sha256} does not have`,
    );
    expect(r.badNarInfos.find((b) => b.name.endsWith(basename(gone.e.narInfoFile)))!.reason).toMatch(/is not in the mirror/);
    for (const b of r.badNarInfos) expect(existsSync(join(mirrorDir, b.movedTo))).toBe(true);
    expect([wrong, gone, relabelled].some((x) => existsSync(x.e.narInfoFile))).toBe(false);
  });
});

/** Every name of the file with this sha256 in a hashed mirror (found by inode). */
function aliasesOf(mirrorDir: string, sha256: string): string[] {
  const ino = statSync(join(mirrorDir, 'tarballs', 'sha256', sha256)).ino;
  return ['md5', 'sha1', 'sha256', 'sha512'].flatMap((algo) =>
    readdirSync(join(mirrorDir, 'tarballs', algo))
      .map((n) => join(mirrorDir, 'tarballs', algo, n))
      .filter((p) => statSync(p).ino === ino),
  );
}
