/** The names a request may ask the mirror for (src/serve/mirror-names.ts): every spelling of a hash, and nothing else. No Nix. */
import { describe, expect, test } from 'vitest';
import { createHash } from 'node:crypto';
import { encodeNix32 } from '../src/nix-formats/hash.js';
import { NAR_NAME, NARINFO_NAME, tarballName } from '../src/serve/mirror-names.js';

describe('tarballName', () => {
  test.each(['md5', 'sha1', 'sha256', 'sha512'] as const)('%s: base16, nix32, base64 and base64url name the same file', (algo) => {
    const raw = createHash(algo).update('fodder').digest();
    const hex = raw.toString('hex');
    for (const name of [hex, hex.toUpperCase(), encodeNix32(raw), raw.toString('base64'), raw.toString('base64url')]) {
      expect(tarballName(algo, name), name).toEqual({ algo, hex });
    }
  });

  test.each([
    ['sha256', '..'],
    ['sha256', '../../etc/passwd'],
    ['sha256', ''],
    ['sha256', 'a'.repeat(63)],
    ['sha256', 'g'.repeat(64)],
    ['sha256', `sha256:${'a'.repeat(64)}`],
    ['sha256', 'e'.repeat(52)],
    ['sha3', 'a'.repeat(64)],
    ['..', 'a'.repeat(64)],
    ['sha256', `${'a'.repeat(60)}/../`],
    ['sha1', 'a'.repeat(64)],
  ])('%s/%s is no name', (algo, name) => {
    expect(tarballName(algo, name)).toBeNull();
  });

  test('cache file names are exactly what the binary cache writes', () => {
    const part = encodeNix32(createHash('sha256').update('x').digest()).slice(0, 32);
    expect(NARINFO_NAME.test(`${part}.narinfo`)).toBe(true);
    expect(NARINFO_NAME.test(`../${part}.narinfo`)).toBe(false);
    const file = encodeNix32(createHash('sha256').update('y').digest());
    for (const ext of ['.nar', '.nar.xz', '.nar.zst']) expect(NAR_NAME.test(`${file}${ext}`)).toBe(true);
    expect(NAR_NAME.test(`${file}.nar/../x`)).toBe(false);
    expect(NAR_NAME.test('nix-cache-info')).toBe(false);
  });
});
