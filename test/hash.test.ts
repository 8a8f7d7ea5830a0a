import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  HASH_ALGOS,
  compressHash,
  decodeBase64,
  decodeNix32,
  encodeNix32,
  formatHash,
  hashOf,
  hashSizes,
  nix32Length,
  parseHash,
  toBase16,
  toBase64,
  toNix32,
  toSri,
  type HashValue,
  type HashAlgo,
} from '../src/nix-formats/hash.js';
import { FodderError } from '../src/errors.js';

const NIX_CMD = ['--extra-experimental-features', 'nix-command'];

function nixHash(args: string[]): string[] {
  return execFileSync('nix-hash', args, { encoding: 'utf8' }).trim().split('\n');
}

function nix(args: string[]): string[] {
  return execFileSync('nix', [...NIX_CMD, ...args], { encoding: 'utf8' })
    .trim()
    .split('\n');
}

function randomHashes(algo: HashAlgo, n: number): HashValue[] {
  const out: HashValue[] = [
    { algo, hex: '00'.repeat(hashSizes[algo]) },
    { algo, hex: 'ff'.repeat(hashSizes[algo]) },
  ];
  for (let i = 0; i < n; i++) out.push({ algo, hex: randomBytes(hashSizes[algo]).toString('hex') });
  return out;
}

describe('nix32, base64 and SRI spellings agree with real Nix', () => {
  for (const algo of HASH_ALGOS) {
    it(`encodes ${algo} hashes exactly as nix-hash --to-base32 and nix hash to-sri / to-base64`, () => {
      const hs = randomHashes(algo, 150);
      const hexes = hs.map((h) => h.hex);
      expect(hs.map((h) => toNix32(h))).toEqual(nixHash(['--type', algo, '--to-base32', ...hexes]));
      expect(hs.map((h) => toSri(h))).toEqual(nix(['hash', 'to-sri', '--type', algo, ...hexes]));
      expect(hs.map((h) => toBase64(h))).toEqual(nix(['hash', 'to-base64', '--type', algo, ...hexes]));
      for (const h of hs) expect(toNix32(h)).toHaveLength(nix32Length(hashSizes[algo]));
    });

    it(`decodes ${algo} nix32, base64 and SRI back to the hex nix-hash --to-base16 gives`, () => {
      const hs = randomHashes(algo, 100);
      const nix32s = hs.map((h) => toNix32(h));
      const sris = hs.map((h) => toSri(h));
      const fromNix32 = nixHash(['--type', algo, '--to-base16', ...nix32s]);
      const fromSri = nixHash(['--type', algo, '--to-base16', ...sris]);
      expect(fromNix32).toEqual(hs.map((h) => h.hex));
      expect(fromSri).toEqual(hs.map((h) => h.hex));
      hs.forEach((h, i) => {
        expect(parseHash(nix32s[i], algo)).toEqual(h);
        expect(parseHash(sris[i])).toEqual(h);
        expect(parseHash(toBase64(h), algo)).toEqual(h);
        expect(parseHash(`${algo}:${toBase64(h)}`)).toEqual(h);
        expect(parseHash(toBase16(h, true))).toEqual(h);
        expect(parseHash(h.hex.toUpperCase(), algo)).toEqual(h);
      });
    });
  }

  it('round-trips nix32 for every byte length, not just hash sizes', () => {
    for (let len = 1; len <= 70; len++) {
      const b = randomBytes(len);
      expect(decodeNix32(encodeNix32(b), len)).toEqual(b);
    }
  });

  it('spells the well-known empty-string sha256 as Nix does', () => {
    const h = hashOf('sha256', '');
    expect(toNix32(h, true)).toBe('sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73');
    expect(toSri(h)).toBe('sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
    expect(formatHash(h, 'base16', true)).toBe(`sha256:${h.hex}`);
  });
});

describe('parseHash accepts and refuses exactly what Nix does', () => {
  const h = hashOf('sha256', 'fodder');
  const nix32 = toNix32(h);
  const b64 = toBase64(h);
  const md5 = hashOf('md5', 'fodder');
  // [text, algo passed on the command line]
  const cases: [string, HashAlgo][] = [
    [h.hex, 'sha256'],
    [h.hex.toUpperCase(), 'sha256'],
    [`sha256:${h.hex}`, 'sha256'],
    [`sha256:${nix32}`, 'sha256'],
    [`sha256:${b64}`, 'sha256'],
    [b64, 'sha256'],
    [b64.replace(/=+$/, ''), 'sha256'], // unpadded, not SRI: wrong length
    [`sha256-${b64}`, 'sha256'],
    [`sha256-${b64.replace(/=+$/, '')}`, 'sha256'], // unpadded SRI: accepted
    [`sha256-${h.hex}`, 'sha256'], // hex in SRI: decodes as base64 to the wrong size
    [`sha256-${nix32}`, 'sha256'],
    [`md5:${md5.hex}`, 'sha256'], // prefix disagrees with the type asked for
    [`sha1:${h.hex}`, 'sha1'], // right type, wrong length
    [`sha257:${h.hex}`, 'sha256'], // unknown type
    [nix32.replace(/^./, 'z'), 'sha256'], // bits past the end
    [nix32.replace(/.$/, 'e'), 'sha256'], // 'e' is not in the alphabet
    [h.hex.replace(/.$/, 'g'), 'sha256'],
    [`${b64.slice(0, -2)}!=`, 'sha256'],
    ['', 'sha256'],
    [md5.hex, 'md5'],
    [toNix32(md5), 'md5'],
    [toSri(md5), 'md5'],
  ];

  for (const [text, algo] of cases) {
    it(`'${text}' as ${algo}`, () => {
      const r = spawnSync('nix-hash', ['--type', algo, '--to-base16', text], { encoding: 'utf8' });
      let ours: string | null = null;
      try {
        ours = parseHash(text, algo).hex;
      } catch (e) {
        expect(e).toBeInstanceOf(FodderError);
        expect((e as FodderError).code).toBe('HASH_INVALID');
      }
      if (r.status === 0) expect(ours).toBe(r.stdout.trim());
      else expect(ours).toBeNull();
    });
  }

  it('needs the type from the text or the caller', () => {
    expect(() => parseHash(h.hex)).toThrow(/does not include a type/);
    expect(parseHash(`sha256:${h.hex}`, undefined)).toEqual(h);
  });

  it('decodes base64 the lenient way Nix does (stops at =, skips newlines)', () => {
    expect(decodeBase64('aGVs\nbG8=garbage').toString()).toBe('hello');
    expect(() => decodeBase64('aGVs*G8=')).toThrow(FodderError);
  });
});

describe('compressHash', () => {
  it('XOR-folds the tail onto the head', () => {
    const b = randomBytes(32);
    const c = compressHash(b, 20);
    expect(c).toHaveLength(20);
    for (let i = 0; i < 20; i++) expect(c[i]).toBe(i < 12 ? b[i] ^ b[i + 20] : b[i]);
    expect(compressHash(Buffer.from([1, 2, 3, 4]), 1)).toEqual(Buffer.from([1 ^ 2 ^ 3 ^ 4]));
  });
});
