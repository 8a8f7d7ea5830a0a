/**
 * Hash encodings as Nix spells them: base16, nix32 (Nix's own base-32), base64 and SRI, plus
 * parsing of every spelling Nix accepts. Behaviour follows Nix's `Hash` constructor in
 * `libutil/hash.cc`: the encoding is chosen by length, an `algo:` prefix marks a plain hash and
 * an `algo-` prefix an SRI one.
 */
import { createHash } from 'node:crypto';
import { ErrorCode, FodderError } from '../errors.js';

export type HashAlgo = 'md5' | 'sha1' | 'sha256' | 'sha512';
/** how a fixed output is hashed: the file itself (`flat`) or its NAR (`recursive`) */
export type HashMode = 'flat' | 'recursive';

/** Error code for a hash that cannot be parsed or an unknown algorithm. */
export const HASH_INVALID = ErrorCode.HASH_INVALID;

/** Digest size in bytes of every algorithm Nix supports for fixed outputs. */
export const hashSizes: Readonly<Record<HashAlgo, number>> = { md5: 16, sha1: 20, sha256: 32, sha512: 64 };

/** The algorithms, in Nix's order. */
export const HASH_ALGOS: readonly HashAlgo[] = ['md5', 'sha1', 'sha256', 'sha512'];

/** A digest with its algorithm; `hex` is lowercase base16. */
export interface HashValue {
  algo: HashAlgo;
  hex: string;
}

export type HashFormat = 'base16' | 'nix32' | 'base64' | 'sri';

const NIX32_CHARS = '0123456789abcdfghijklmnpqrsvwxyz';
const NIX32_INDEX: Int8Array = (() => {
  const t = new Int8Array(256).fill(-1);
  for (let i = 0; i < NIX32_CHARS.length; i++) t[NIX32_CHARS.charCodeAt(i)] = i;
  return t;
})();

const BASE64_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const BASE64_INDEX: Int8Array = (() => {
  const t = new Int8Array(256).fill(-1);
  for (let i = 0; i < BASE64_CHARS.length; i++) t[BASE64_CHARS.charCodeAt(i)] = i;
  return t;
})();

/** True when `s` names an algorithm Nix accepts for fixed outputs. */
export function isHashAlgo(s: string): s is HashAlgo {
  return Object.prototype.hasOwnProperty.call(hashSizes, s);
}

/** The algorithm named by `s`, or a HASH_INVALID error. */
export function hashAlgoOf(s: string): HashAlgo {
  if (!isHashAlgo(s)) {
    throw new FodderError(HASH_INVALID, `unknown hash algorithm '${s}', expected one of ${HASH_ALGOS.join(', ')}`, { algo: s });
  }
  return s;
}

/** Length of the nix32 spelling of `size` bytes: ceil(bits / 5). */
export function nix32Length(size: number): number {
  return Math.ceil((size * 8) / 5);
}

/** Length of the padded base64 spelling of `size` bytes. */
export function base64Length(size: number): number {
  return Math.ceil(size / 3) * 4;
}

/** nix32 spelling of raw bytes (Nix's bit order: characters come from the end of the hash). */
export function encodeNix32(bytes: Uint8Array): string {
  const len = nix32Length(bytes.length);
  let s = '';
  for (let n = len - 1; n >= 0; n--) {
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    const hi = i >= bytes.length - 1 ? 0 : bytes[i + 1] << (8 - j);
    s += NIX32_CHARS[((bytes[i] >> j) | hi) & 0x1f];
  }
  return s;
}

/**
 * Raw bytes of a nix32 string. `size` defaults to the largest byte count the length can hold
 * (20 for a store path hash part). Rejects characters outside the alphabet and set bits past
 * the end, as Nix does.
 */
export function decodeNix32(text: string, size: number = Math.floor((text.length * 5) / 8)): Buffer {
  if (nix32Length(size) !== text.length) {
    throw new FodderError(HASH_INVALID, `nix32 string '${text}' has wrong length for ${size} bytes`, { text });
  }
  const out = Buffer.alloc(size);
  for (let n = 0; n < text.length; n++) {
    const code = text.charCodeAt(text.length - n - 1);
    const digit = code < 256 ? NIX32_INDEX[code] : -1;
    if (digit < 0) {
      throw new FodderError(HASH_INVALID, `invalid nix32 string '${text}'`, { text });
    }
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    out[i] |= (digit << j) & 0xff;
    const carry = digit >> (8 - j);
    if (i < size - 1) out[i + 1] |= carry;
    else if (carry) throw new FodderError(HASH_INVALID, `invalid nix32 string '${text}' (bits past the end)`, { text });
  }
  return out;
}

/** Lowercase base16 of raw bytes. */
export function encodeBase16(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Raw bytes of a base16 string (either case), strictly validated. */
export function decodeBase16(text: string): Buffer {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new FodderError(HASH_INVALID, `invalid base-16 string '${text}'`, { text });
  }
  return Buffer.from(text, 'hex');
}

/** Padded standard base64 of raw bytes. */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/**
 * Raw bytes of a base64 string, decoded the way Nix does: stops at the first `=`, skips
 * newlines, rejects any other character outside the standard alphabet.
 */
export function decodeBase64(text: string): Buffer {
  const out: number[] = [];
  let d = 0;
  let bits = 0;
  for (let k = 0; k < text.length; k++) {
    const c = text.charCodeAt(k);
    if (c === 0x3d) break; // '='
    if (c === 0x0a) continue;
    const digit = c < 256 ? BASE64_INDEX[c] : -1;
    if (digit < 0) throw new FodderError(HASH_INVALID, `invalid character in base64 string '${text}'`, { text });
    d = ((d << 6) | digit) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      out.push((d >> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/**
 * Parse a hash in any spelling Nix accepts: base16 (either case), nix32, base64 or SRI, with an
 * optional `algo:` prefix (or `algo-` for SRI). Without a prefix `algo` must be given; with
 * both they must agree.
 */
export function parseHash(text: string, algo?: HashAlgo): HashValue {
  let rest = text;
  let prefixed: HashAlgo | undefined;
  let isSri = false;
  const colon = rest.indexOf(':');
  if (colon >= 0) {
    prefixed = hashAlgoOf(rest.slice(0, colon));
    rest = rest.slice(colon + 1);
  } else {
    const dash = rest.indexOf('-');
    if (dash >= 0) {
      prefixed = hashAlgoOf(rest.slice(0, dash));
      rest = rest.slice(dash + 1);
      isSri = true;
    }
  }
  if (!prefixed && !algo) {
    throw new FodderError(HASH_INVALID, `hash '${text}' does not include a type, nor is the type otherwise known from context`, { text });
  }
  if (prefixed && algo && prefixed !== algo) {
    throw new FodderError(HASH_INVALID, `hash '${text}' should have type '${algo}'`, { text, expected: algo });
  }
  const a = (prefixed ?? algo) as HashAlgo;
  const size = hashSizes[a];
  let bytes: Buffer;
  if (!isSri && rest.length === size * 2) {
    bytes = decodeBase16(rest);
  } else if (!isSri && rest.length === nix32Length(size)) {
    bytes = decodeNix32(rest, size);
  } else if (isSri || rest.length === base64Length(size)) {
    bytes = decodeBase64(rest);
    if (bytes.length !== size) {
      throw new FodderError(HASH_INVALID, `invalid ${isSri ? 'SRI' : 'base-64'} hash '${text}'`, { text });
    }
  } else {
    throw new FodderError(HASH_INVALID, `hash '${text}' has wrong length for hash algorithm '${a}'`, { text, algo: a });
  }
  return { algo: a, hex: bytes.toString('hex') };
}

/** Raw digest bytes of a hash value. */
export function hashBytes(h: HashValue): Buffer {
  return decodeBase16(h.hex);
}

/** The hash spelled in `format`; `prefix` adds `algo:` (SRI always carries `algo-`). */
export function formatHash(h: HashValue, format: HashFormat, prefix = false): string {
  if (format === 'sri') return `${h.algo}-${encodeBase64(hashBytes(h))}`;
  const body = format === 'base16' ? h.hex.toLowerCase() : format === 'nix32' ? encodeNix32(hashBytes(h)) : encodeBase64(hashBytes(h));
  return prefix ? `${h.algo}:${body}` : body;
}

/** `<algo>-<base64>`. */
export function toSri(h: HashValue): string {
  return formatHash(h, 'sri');
}

/** nix32 spelling, with `algo:` when `prefix`. */
export function toNix32(h: HashValue, prefix = false): string {
  return formatHash(h, 'nix32', prefix);
}

/** lowercase base16 spelling, with `algo:` when `prefix`. */
export function toBase16(h: HashValue, prefix = false): string {
  return formatHash(h, 'base16', prefix);
}

/** padded base64 spelling, with `algo:` when `prefix`. */
export function toBase64(h: HashValue, prefix = false): string {
  return formatHash(h, 'base64', prefix);
}

/** Nix's `compressHash`: XOR-fold `bytes` into `size` bytes. */
export function compressHash(bytes: Uint8Array, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < bytes.length; i++) out[i % size] ^= bytes[i];
  return out;
}

/** The digest of `data` under `algo`. */
export function hashOf(algo: HashAlgo, data: string | Uint8Array): HashValue {
  return { algo, hex: createHash(algo).update(data).digest('hex') };
}
