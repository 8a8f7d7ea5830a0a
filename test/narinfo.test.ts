import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FodderError } from '../src/errors.js';
import { HASH_ALGOS, hashOf, parseHash, toNix32 } from '../src/nix-formats/hash.js';
import { fodStorePath, type FixedOutputHash } from '../src/nix-formats/store-path.js';
import { narHash, narOfFile, narStream } from '../src/nix-formats/nar.js';
import {
  fixedOutputCa,
  formatNarInfo,
  generateKeyPair,
  narInfoFileName,
  narInfoFingerprint,
  nixCacheInfo,
  parseCa,
  parseNarInfo,
  publicKeyOf,
  signNarInfo,
  verifyNarInfoSig,
  type NarInfo,
} from '../src/nix-formats/narinfo.js';
import { compressedStream, writeNarFile, type Compression } from '../src/mirror/nar-file.js';
import { createHashPool } from '../src/mirror/hashing.js';
import { realiseIn } from './helpers/nix.js';

const NIX_CMD = ['--extra-experimental-features', 'nix-command'];

async function collectToBuffer(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}
let root: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'fodder-narinfo-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

function fresh(name: string): string {
  const d = join(root, name);
  mkdirSync(d, { recursive: true });
  return d;
}

/** A key pair made by `nix-store --generate-binary-cache-key`. */
function nixKeyPair(name: string): { secretKey: string; publicKey: string; secretFile: string } {
  const dir = fresh(`key-${name}-${randomBytes(4).toString('hex')}`);
  const secretFile = join(dir, 'sec');
  execFileSync('nix-store', ['--generate-binary-cache-key', name, secretFile, join(dir, 'pub')]);
  return { secretKey: readFileSync(secretFile, 'utf8'), publicKey: readFileSync(join(dir, 'pub'), 'utf8'), secretFile };
}

/** `nix-store --realise` of a store path into a fresh chroot store, substituting only from `cache`. */
function nixRealise(cache: string, trustedKey: string, path: string): { ok: boolean; store: string; stderr: string } {
  const store = mkdtempSync(join(root, 'store-'));
  const r = realiseIn(store, [path], { substituters: `file://${cache}`, 'trusted-public-keys': trustedKey, 'require-sigs': 'true' });
  return { ok: r.status === 0, store, stderr: r.stderr };
}

function sampleInfo(): NarInfo {
  return {
    storePath: '/nix/store/zqdsrc64wgyvgxv4f5d1ir68awg12gi1-source',
    url: 'nar/1wq0f74cm8pbps6y28dx2pqm536i3riyj68y7lk3plm46axr99d3.nar.xz',
    compression: 'xz',
    fileHash: parseHash('sha256:1wq0f74cm8pbps6y28dx2pqm536i3riyj68y7lk3plm46axr99d3'),
    fileSize: 12144,
    narHash: parseHash('sha256:1nzqpgw4fzv6kidzhskyf16yx9h4bgqycb76qj55802rcsw0csci'),
    narSize: 36528,
    references: ['6knq949b53ya3z1rs5ips7h7xkb8mw3a-flat.txt', '31hff3x9nwpprv07fip8kxv2l3gr1fd0-tree'],
    deriver: 'h90k5i2y1qjpn7nxqfvlrriynza3xhzj-source.drv',
    ca: 'fixed:r:sha256:1nzqpgw4fzv6kidzhskyf16yx9h4bgqycb76qj55802rcsw0csci',
    sigs: ['b:sig', 'a:sig'],
  };
}

describe('narinfo text', () => {
  it('formats fields in Nix order and parses back to the same info', () => {
    const info = sampleInfo();
    const text = formatNarInfo(info);
    expect(text.split('\n').map((l) => l.split(':')[0])).toEqual([
      'StorePath',
      'URL',
      'Compression',
      'FileHash',
      'FileSize',
      'NarHash',
      'NarSize',
      'References',
      'Deriver',
      'Sig',
      'Sig',
      'CA',
      '',
    ]);
    expect(text).toContain('References: 31hff3x9nwpprv07fip8kxv2l3gr1fd0-tree 6knq949b53ya3z1rs5ips7h7xkb8mw3a-flat.txt\n');
    const back = parseNarInfo(text);
    expect(back).toMatchObject({ ...info, references: [...info.references].sort(), sigs: ['a:sig', 'b:sig'] });
    expect(formatNarInfo(back)).toBe(text);
  });

  it('parses like Nix: bzip2 by default, unknown-deriver, unknown fields ignored, any prefixed hash spelling', () => {
    const h = hashOf('sha256', 'x');
    const text = `StorePath: /nix/store/zqdsrc64wgyvgxv4f5d1ir68awg12gi1-source\nURL: nar/x.nar.bz2\nNarHash: sha256-${Buffer.from(h.hex, 'hex').toString('base64')}\nNarSize: 8\nReferences: \nDeriver: unknown-deriver\nFuture: thing\n`;
    const info = parseNarInfo(text);
    expect(info).toMatchObject({ compression: 'bzip2', narHash: h, narSize: 8, references: [], sigs: [] });
    expect(info.deriver).toBeUndefined();
  });

  const broken: [string, string][] = [
    ['no StorePath', 'URL: u\nNarHash: sha256:1nzqpgw4fzv6kidzhskyf16yx9h4bgqycb76qj55802rcsw0csci\nNarSize: 1\n'],
    [
      'no URL',
      'StorePath: /nix/store/zqdsrc64wgyvgxv4f5d1ir68awg12gi1-source\nNarHash: sha256:1nzqpgw4fzv6kidzhskyf16yx9h4bgqycb76qj55802rcsw0csci\nNarSize: 1\n',
    ],
    [
      'a zero NarSize',
      'StorePath: /nix/store/zqdsrc64wgyvgxv4f5d1ir68awg12gi1-source\nURL: u\nNarHash: sha256:1nzqpgw4fzv6kidzhskyf16yx9h4bgqycb76qj55802rcsw0csci\nNarSize: 0\n',
    ],
    [
      'an unprefixed NarHash',
      'StorePath: /nix/store/zqdsrc64wgyvgxv4f5d1ir68awg12gi1-source\nURL: u\nNarHash: 1nzqpgw4fzv6kidzhskyf16yx9h4bgqycb76qj55802rcsw0csci\nNarSize: 1\n',
    ],
    [
      'no final newline',
      'StorePath: /nix/store/zqdsrc64wgyvgxv4f5d1ir68awg12gi1-source\nURL: u\nNarHash: sha256:1nzqpgw4fzv6kidzhskyf16yx9h4bgqycb76qj55802rcsw0csci\nNarSize: 1',
    ],
    [
      'a bad reference',
      'StorePath: /nix/store/zqdsrc64wgyvgxv4f5d1ir68awg12gi1-source\nURL: u\nNarHash: sha256:1nzqpgw4fzv6kidzhskyf16yx9h4bgqycb76qj55802rcsw0csci\nNarSize: 1\nReferences: not-a-path\n',
    ],
  ];
  for (const [what, text] of broken) {
    it(`refuses ${what}`, () => {
      expect(() => parseNarInfo(text)).toThrow(FodderError);
    });
  }

  it('writes nix-cache-info', () => {
    expect(nixCacheInfo()).toBe('StoreDir: /nix/store\n');
    expect(nixCacheInfo({ wantMassQuery: true, priority: 40 })).toBe('StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n');
  });
});

describe('CA field', () => {
  it('round-trips every algorithm and mode', () => {
    for (const algo of HASH_ALGOS) {
      for (const mode of ['flat', 'recursive'] as const) {
        const h: FixedOutputHash = { algo, mode, hex: hashOf(algo, `${algo}${mode}`).hex };
        const ca = fixedOutputCa(h);
        expect(ca).toBe(`fixed:${mode === 'recursive' ? 'r:' : ''}${algo}:${toNix32(h)}`);
        expect(parseCa(ca)).toEqual({ method: 'fixed', ...h });
      }
    }
    expect(parseCa(`text:sha256:${toNix32(hashOf('sha256', 't'))}`)).toEqual({ method: 'text', ...hashOf('sha256', 't') });
    expect(() => parseCa('fixed:r:sha256:nothex')).toThrow(FodderError);
    expect(() => parseCa('text:r:sha256:x')).toThrow(FodderError);
  });
});

describe('keys and signatures against Nix', () => {
  it("our key pair has Nix's shape, and a Nix key pair works with our code", () => {
    const ours = generateKeyPair('fodder-1');
    expect(ours.secretKey).toMatch(/^fodder-1:[A-Za-z0-9+/]{86}==$/);
    expect(ours.publicKey).toMatch(/^fodder-1:[A-Za-z0-9+/]{43}=$/);
    expect(publicKeyOf(ours.secretKey)).toBe(ours.publicKey);

    const nix = nixKeyPair('nix-made-1');
    expect(publicKeyOf(nix.secretKey)).toBe(nix.publicKey);
    const fp = narInfoFingerprint(sampleInfo());
    const sig = signNarInfo(fp, nix.secretKey);
    expect(sig.startsWith('nix-made-1:')).toBe(true);
    expect(verifyNarInfoSig(fp, sig, nix.publicKey)).toBe(true);
    expect(verifyNarInfoSig(`${fp}x`, sig, nix.publicKey)).toBe(false);
    expect(verifyNarInfoSig(fp, sig, [ours.publicKey, nixKeyPair('nix-made-1').publicKey])).toBe(false);
    expect(verifyNarInfoSig(fp, sig, [ours.publicKey])).toBe(false);
    expect(verifyNarInfoSig(fp, 'nix-made-1:bm90IGEgc2ln', nix.publicKey)).toBe(false);
    expect(() => signNarInfo(fp, 'name:c2hvcnQ=')).toThrow(/64 bytes/);
  });

  it("the hash pool's threads check signatures as this thread does, one answer per narinfo in order", async () => {
    const nix = nixKeyPair('pool-key-1');
    const other = generateKeyPair('pool-key-1');
    const fps = Array.from({ length: 5 }, (_, i) => `${narInfoFingerprint(sampleInfo())}${i}`);
    const items = [
      { fingerprint: fps[0], sigs: [signNarInfo(fps[0], nix.secretKey)] },
      { fingerprint: fps[1], sigs: [signNarInfo(fps[1], other.secretKey)] }, // the key's name, another key
      { fingerprint: fps[2], sigs: [signNarInfo(fps[0], nix.secretKey)] }, // another narinfo's signature
      { fingerprint: fps[3], sigs: ['pool-key-1:bm90IGEgc2ln', signNarInfo(fps[3], nix.secretKey)] },
      { fingerprint: fps[4], sigs: [] },
    ];
    const pool = createHashPool();
    try {
      const good = await pool.verifySigs({ items, keys: [nix.publicKey] });
      expect(good).toEqual([true, false, false, true, false]);
      expect(good).toEqual(items.map((i) => i.sigs.some((s) => verifyNarInfoSig(i.fingerprint, s, nix.publicKey))));
    } finally {
      await pool.close();
    }
  });

  it('fingerprints with full, sorted reference paths', () => {
    const info = sampleInfo();
    expect(narInfoFingerprint(info)).toBe(
      '1;/nix/store/zqdsrc64wgyvgxv4f5d1ir68awg12gi1-source;sha256:1nzqpgw4fzv6kidzhskyf16yx9h4bgqycb76qj55802rcsw0csci;36528;' +
        '/nix/store/31hff3x9nwpprv07fip8kxv2l3gr1fd0-tree,/nix/store/6knq949b53ya3z1rs5ips7h7xkb8mw3a-flat.txt',
    );
  });

  it("reads what nix copy writes, verifies Nix's signature and reproduces it byte for byte", () => {
    const nix = nixKeyPair('copy-key-1');
    const src = fresh('copy-src');
    writeFileSync(join(src, 'file'), 'copied by nix\n');
    mkdirSync(join(src, 'tree'));
    writeFileSync(join(src, 'tree', 'x'), randomBytes(5000));
    const store = join(root, 'copy-store');
    const cache = join(root, 'copy-cache');
    const added = [
      execFileSync('nix-store', ['--store', store, '--add-fixed', 'sha1', join(src, 'file')], { encoding: 'utf8' }).trim(),
      execFileSync('nix-store', ['--store', store, '--add-fixed', '--recursive', 'sha256', join(src, 'tree')], { encoding: 'utf8' }).trim(),
      execFileSync('nix-store', ['--store', store, '--add-fixed', '--recursive', 'sha512', join(src, 'tree')], { encoding: 'utf8' }).trim(),
    ];
    execFileSync('nix', [...NIX_CMD, 'copy', '--all', '--from', store, '--to', `file://${cache}?compression=xz&secret-key=${nix.secretFile}`]);
    const expectedHashes: FixedOutputHash[] = [
      { algo: 'sha1', mode: 'flat', hex: hashOf('sha1', readFileSync(join(src, 'file'))).hex },
      { algo: 'sha256', mode: 'recursive', hex: '' },
      { algo: 'sha512', mode: 'recursive', hex: '' },
    ];
    for (const [i, path] of added.entries()) {
      const text = readFileSync(join(cache, narInfoFileName(path)), 'utf8');
      const info = parseNarInfo(text);
      expect(info.storePath).toBe(path);
      expect(formatNarInfo(info)).toBe(text);
      expect(info.sigs).toHaveLength(1);
      const fp = narInfoFingerprint(info);
      expect(verifyNarInfoSig(fp, info.sigs[0], nix.publicKey)).toBe(true);
      expect(signNarInfo(fp, nix.secretKey)).toBe(info.sigs[0]);
      // Nix's CA field and store path agree with ours.
      const ca = parseCa(info.ca!);
      expect(ca).toMatchObject({ method: 'fixed', algo: expectedHashes[i].algo, mode: expectedHashes[i].mode });
      if (ca.method === 'fixed') {
        if (expectedHashes[i].hex) expect(ca.hex).toBe(expectedHashes[i].hex);
        expect(fixedOutputCa(ca)).toBe(info.ca);
        expect(fodStorePath(ca, path.slice(44))).toBe(path);
      }
    }
  }, 60_000);
});

describe('a file:// binary cache written by fodder is substituted by real Nix', () => {
  let cache: string;
  let key: { secretKey: string; publicKey: string };
  const items: { storePath: string; source: string; flat: boolean; compression: Compression; hash: FixedOutputHash }[] = [];

  beforeAll(async () => {
    cache = fresh('cache');
    key = generateKeyPair('fodder-cache-1');
    const src = fresh('cache-src');
    writeFileSync(join(src, 'download.tar.gz'), randomBytes(70_000));
    writeFileSync(join(src, 'patch.diff'), '--- a\n+++ b\n');
    const tree = join(src, 'tree');
    mkdirSync(join(tree, 'bin'), { recursive: true });
    mkdirSync(join(tree, 'empty'));
    writeFileSync(join(tree, 'bin', 'tool'), '#!/bin/sh\n');
    chmodSync(join(tree, 'bin', 'tool'), 0o755);
    writeFileSync(join(tree, 'README'), 'read me');
    writeFileSync(join(tree, 'zero'), '');
    symlinkSync('README', join(tree, 'link'));
    symlinkSync('../missing', join(tree, 'dangling'));

    writeFileSync(join(cache, 'nix-cache-info'), nixCacheInfo({ wantMassQuery: true, priority: 30 }));
    const specs = [
      { name: 'download.tar.gz', source: join(src, 'download.tar.gz'), flat: true, algo: 'sha256', compression: 'none' },
      { name: 'patch.diff', source: join(src, 'patch.diff'), flat: true, algo: 'sha512', compression: 'xz' },
      { name: 'source', source: tree, flat: false, algo: 'sha256', compression: 'none' },
      { name: 'tree-sha1', source: tree, flat: false, algo: 'sha1', compression: 'xz' },
    ] as const;
    for (const s of specs) {
      const hash: FixedOutputHash = s.flat
        ? { algo: s.algo, mode: 'flat', hex: hashOf(s.algo, readFileSync(s.source)).hex }
        : { algo: s.algo, mode: 'recursive', hex: (await narHash(s.source, s.algo)).hex };
      const storePath = fodStorePath(hash, s.name);
      items.push({ storePath, source: s.source, flat: s.flat, compression: s.compression, hash });
    }
  });

  /** Write every item's NAR and a signed narinfo; `ca` adds the CA field. */
  async function publish(opts: { ca: boolean; sign: boolean }): Promise<void> {
    for (const it of items) {
      const w = await writeNarFile(it.source, cache, it.compression, { flatFile: it.flat });
      const info: NarInfo = { storePath: it.storePath, ...w, references: [], sigs: [], ca: opts.ca ? fixedOutputCa(it.hash) : null };
      if (opts.sign) info.sigs.push(signNarInfo(narInfoFingerprint(info), key.secretKey));
      writeFileSync(join(cache, narInfoFileName(it.storePath)), formatNarInfo(info));
    }
  }

  it('with signatures and no CA field (so the signature is what Nix trusts)', async () => {
    await publish({ ca: false, sign: true });
    for (const it of items) {
      const r = nixRealise(cache, key.publicKey, it.storePath);
      expect(r.stderr).not.toContain('error');
      expect(r.ok).toBe(true);
      // Registered as valid with our NAR hash, and the files on disk dump to our NAR.
      const ours = await collectToBuffer(it.flat ? narOfFile(it.source) : narStream(it.source));
      const registered = execFileSync('nix-store', ['--store', r.store, '--query', '--hash', it.storePath], { encoding: 'utf8' }).trim();
      expect(registered).toBe(`sha256:${toNix32(hashOf('sha256', ours))}`);
      const dumped = execFileSync('nix-store', ['--dump', `${r.store}${it.storePath}`]);
      expect(dumped.equals(ours)).toBe(true);
    }
  }, 60_000);

  it('but not when the trusted key is another one, nor when a NAR was tampered with', async () => {
    await publish({ ca: false, sign: true });
    const other = nixKeyPair('fodder-cache-1'); // same name, different key
    const r = nixRealise(cache, other.publicKey, items[0].storePath);
    expect(r.ok).toBe(false);
    expect(r.stderr).toContain('not signed by any of the keys');

    const info = parseNarInfo(readFileSync(join(cache, narInfoFileName(items[0].storePath)), 'utf8'));
    const narFile = join(cache, info.url);
    const bytes = readFileSync(narFile);
    bytes[bytes.length - 20] ^= 0xff; // inside the file contents: same size, other hash
    writeFileSync(narFile, bytes);
    const t = nixRealise(cache, key.publicKey, items[0].storePath);
    expect(t.ok).toBe(false);
    expect(t.stderr).toMatch(/hash mismatch/i);
  }, 60_000);

  it('with a CA field Nix 2.8 takes the path even unsigned: it checks the content address instead', async () => {
    await publish({ ca: true, sign: false });
    for (const it of items) {
      const r = nixRealise(cache, nixKeyPair('unrelated-1').publicKey, it.storePath);
      expect(r.ok).toBe(true);
    }
  }, 60_000);

  it('leaves no temporary files in nar/', () => {
    expect(readdirSync(join(cache, 'nar')).filter((n) => n.startsWith('.tmp'))).toEqual([]);
  });
});

describe('xz compression', () => {
  it('round-trips through xz -d and reports a failing source', async () => {
    const data = randomBytes(3_000_000);
    const compressed = await collectToBuffer(compressedStream([data.subarray(0, 1_000_000), data.subarray(1_000_000)], 'xz', { level: 1 }));
    expect(compressed.subarray(0, 6).toString('latin1')).toBe('\xfd7zXZ\x00');
    expect(execFileSync('xz', ['-d', '-c'], { input: compressed, maxBuffer: 1 << 26 }).equals(data)).toBe(true);

    const failing = (async function* () {
      yield Buffer.from('some');
      throw new FodderError('NAR_UNSUPPORTED_FILE', 'boom');
    })();
    await expect(collectToBuffer(compressedStream(failing, 'xz'))).rejects.toMatchObject({ code: 'NAR_UNSUPPORTED_FILE' });
  }, 60_000);
});
