/**
 * Binary cache pieces, as Nix reads and writes them: `nix-cache-info`, `.narinfo` text, the
 * `CA` field of fixed outputs, Ed25519 signing with Nix's key format. Writing the NAR file a
 * narinfo names is the mirror's (src/mirror/nar-file.ts).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { ErrorCode, FodderError } from '../errors.js';
import { decodeBase64, encodeBase64, hashAlgoOf, parseHash, toNix32, type HashValue } from './hash.js';
import { DEFAULT_STORE_DIR, parseStorePath, parseStorePathBase, type FixedOutputHash } from './store-path.js';

/** Error codes of this module. */
export const NARINFO_INVALID = ErrorCode.NARINFO_INVALID;
export const KEY_INVALID = ErrorCode.KEY_INVALID;

/** The contents of a binary cache's `nix-cache-info`. */
export function nixCacheInfo(opts: { storeDir?: string; wantMassQuery?: boolean; priority?: number } = {}): string {
  const lines = [`StoreDir: ${opts.storeDir ?? DEFAULT_STORE_DIR}`];
  if (opts.wantMassQuery !== undefined) lines.push(`WantMassQuery: ${opts.wantMassQuery ? 1 : 0}`);
  if (opts.priority !== undefined) lines.push(`Priority: ${opts.priority}`);
  return `${lines.join('\n')}\n`;
}

/** One `.narinfo`. Store paths are full; references and deriver are basenames, as in the file. */
export interface NarInfo {
  storePath: string;
  url: string;
  compression: string;
  fileHash?: HashValue | null;
  fileSize?: number | null;
  narHash: HashValue;
  narSize: number;
  references: string[];
  deriver?: string | null;
  system?: string | null;
  ca?: string | null;
  sigs: string[];
}

/** `<hashPart>.narinfo`, the file name a cache serves a store path's info under. */
export function narInfoFileName(storePath: string, storeDir: string = DEFAULT_STORE_DIR): string {
  return `${parseStorePath(storePath, storeDir).hashPart}.narinfo`;
}

/** The `.narinfo` text, fields in the order Nix writes them (references and sigs byte-sorted, as Nix's sets are). */
export function formatNarInfo(info: NarInfo): string {
  if (info.narHash.algo !== 'sha256') throw invalid('NarHash must be sha256', { narHash: info.narHash });
  const lines = [`StorePath: ${info.storePath}`, `URL: ${info.url}`, `Compression: ${info.compression}`];
  if (info.fileHash) lines.push(`FileHash: ${toNix32(info.fileHash, true)}`);
  if (info.fileSize != null) lines.push(`FileSize: ${info.fileSize}`);
  lines.push(`NarHash: ${toNix32(info.narHash, true)}`, `NarSize: ${info.narSize}`);
  lines.push(`References: ${[...info.references].sort(compareBytes).join(' ')}`);
  if (info.deriver) lines.push(`Deriver: ${info.deriver}`);
  if (info.system) lines.push(`System: ${info.system}`);
  for (const sig of [...new Set(info.sigs)].sort(compareBytes)) lines.push(`Sig: ${sig}`);
  if (info.ca) lines.push(`CA: ${info.ca}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Parse `.narinfo` text as Nix does: `Name: value` lines, unknown names ignored, Compression
 * defaulting to bzip2; StorePath, URL, NarHash and a non-zero NarSize are required.
 */
export function parseNarInfo(text: string, storeDir: string = DEFAULT_STORE_DIR): NarInfo {
  const info: Partial<NarInfo> & { references: string[]; sigs: string[] } = { references: [], sigs: [] };
  let sawRefs = false;
  const lines = text.split('\n');
  if (lines.pop() !== '') throw invalid("expecting '\\n' at the end");
  lines.forEach((line, i) => {
    const colon = line.indexOf(':');
    if (colon < 0) throw invalid(`expecting ':' at line ${i + 1}`);
    const name = line.slice(0, colon);
    const value = line.slice(colon + 2);
    const hashField = (): HashValue => {
      try {
        return parseHash(value);
      } catch {
        throw invalid(`bad hash at line ${i + 1}`, { value });
      }
    };
    const int = (): number => {
      if (!/^[0-9]+$/.test(value)) throw invalid(`invalid ${name} at line ${i + 1}`, { value });
      return Number(value);
    };
    switch (name) {
      case 'StorePath':
        parseStorePath(value, storeDir);
        info.storePath = value;
        break;
      case 'URL':
        info.url = value;
        break;
      case 'Compression':
        info.compression = value;
        break;
      case 'FileHash':
        info.fileHash = hashField();
        break;
      case 'FileSize':
        info.fileSize = int();
        break;
      case 'NarHash':
        info.narHash = hashField();
        break;
      case 'NarSize':
        info.narSize = int();
        break;
      case 'References':
        if (sawRefs) throw invalid(`extra References at line ${i + 1}`);
        sawRefs = true;
        info.references = value.split(' ').filter((r) => r !== '');
        info.references.forEach((r) => parseStorePathBase(r));
        break;
      case 'Deriver':
        if (value !== 'unknown-deriver') {
          parseStorePathBase(value);
          info.deriver = value;
        }
        break;
      case 'System':
        info.system = value;
        break;
      case 'Sig':
        info.sigs.push(value);
        break;
      case 'CA':
        if (info.ca) throw invalid(`extra CA at line ${i + 1}`);
        parseCa(value);
        info.ca = value;
        break;
      default:
        break;
    }
  });
  if (!info.storePath) throw invalid('StorePath missing');
  if (!info.narHash) throw invalid('NarHash missing');
  if (!info.url) throw invalid('URL missing');
  if (!info.narSize) throw invalid('NarSize missing or zero');
  return { compression: 'bzip2', ...info } as NarInfo;
}

/** The `CA` field of a fixed output: `fixed:[r:]<algo>:<nix32>`. */
export function fixedOutputCa(hash: FixedOutputHash): string {
  return `fixed:${hash.mode === 'recursive' ? 'r:' : ''}${toNix32(hash, true)}`;
}

/** A parsed `CA` field: `text:` (always sha256) or `fixed:` with its ingestion mode. */
export type ContentAddress = { method: 'text'; algo: 'sha256'; hex: string } | ({ method: 'fixed' } & FixedOutputHash);

/** Parse a `CA` field (`text:sha256:...`, `fixed:[r:]<algo>:...`, any hash spelling Nix takes). */
export function parseCa(ca: string): ContentAddress {
  const m = /^(text|fixed):(r:)?([a-z0-9]+):(.+)$/.exec(ca);
  if (!m || (m[1] === 'text' && m[2])) throw invalid(`bad content address '${ca}'`, { ca });
  const h = (() => {
    try {
      return parseHash(m[4], hashAlgoOf(m[3]));
    } catch {
      throw invalid(`bad hash in content address '${ca}'`, { ca });
    }
  })();
  if (m[1] === 'text') {
    if (h.algo !== 'sha256') throw invalid(`text content address must be sha256: '${ca}'`, { ca });
    return { method: 'text', algo: 'sha256', hex: h.hex };
  }
  return { method: 'fixed', mode: m[2] ? 'recursive' : 'flat', algo: h.algo, hex: h.hex };
}

/**
 * What a narinfo signature signs: `1;<storePath>;sha256:<nix32 narHash>;<narSize>;<refs>` with
 * the references as full store paths, byte-sorted, comma-joined.
 */
export function narInfoFingerprint(info: Pick<NarInfo, 'storePath' | 'narHash' | 'narSize' | 'references'>): string {
  if (info.narHash.algo !== 'sha256') throw invalid('NarHash must be sha256 to be signed');
  if (!info.narSize) throw invalid(`cannot fingerprint '${info.storePath}': its NAR size is not known`);
  const storeDir = info.storePath.slice(0, info.storePath.lastIndexOf('/'));
  const refs = info.references.map((r) => (r.includes('/') ? r : `${storeDir}/${r}`)).sort(compareBytes);
  return `1;${info.storePath};${toNix32(info.narHash, true)};${info.narSize};${refs.join(',')}`;
}

/** A key pair in Nix's text format: `name:base64(seed||public)` and `name:base64(public)`. */
export interface KeyPair {
  secretKey: string;
  publicKey: string;
}

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** A fresh Ed25519 key pair named `name`, in the format `nix-store --generate-binary-cache-key` writes. */
export function generateKeyPair(name: string): KeyPair {
  checkKeyName(name);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_ED25519_PREFIX.length);
  const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519_PREFIX.length);
  return { secretKey: `${name}:${encodeBase64(Buffer.concat([seed, pub]))}`, publicKey: `${name}:${encodeBase64(pub)}` };
}

/** The public key (`name:base64`) belonging to a Nix secret key. */
export function publicKeyOf(secretKey: string): string {
  const { name, pub } = parseSecretKey(secretKey);
  return `${name}:${encodeBase64(pub)}`;
}

/** Sign a fingerprint with a Nix secret key; returns the `Sig` value `name:base64(signature)`. */
export function signNarInfo(fingerprint: string, secretKey: string): string {
  const { name, key } = parseSecretKey(secretKey);
  return `${name}:${encodeBase64(sign(null, Buffer.from(fingerprint), key))}`;
}

/**
 * True when `sig` (`name:base64`) is a valid signature of `fingerprint` by the public key of
 * the same name among `publicKeys`. Unknown names and malformed signatures are false.
 */
export function verifyNarInfoSig(fingerprint: string, sig: string, publicKeys: string | readonly string[]): boolean {
  const colon = sig.indexOf(':');
  if (colon <= 0) return false;
  const name = sig.slice(0, colon);
  for (const pk of typeof publicKeys === 'string' ? [publicKeys] : publicKeys) {
    const parsed = splitKey(pk.trim(), 'public');
    if (parsed.name !== name) continue;
    if (parsed.bytes.length !== 32) throw keyError('public key must be 32 bytes', parsed.name);
    let raw: Buffer;
    try {
      raw = decodeBase64(sig.slice(colon + 1));
    } catch {
      return false;
    }
    if (raw.length !== 64) return false;
    if (verify(null, Buffer.from(fingerprint), publicKeyObject(parsed.bytes), raw)) return true;
  }
  return false;
}

/** True when one of `sigs` is a valid signature of `fingerprint` by one of `publicKeys` (`verifyNarInfoSig`). */
export function signedByAny(fingerprint: string, sigs: readonly string[], publicKeys: readonly string[]): boolean {
  return sigs.some((s) => verifyNarInfoSig(fingerprint, s, publicKeys));
}

/**
 * The key object of a 32-byte Ed25519 public key, made once per key: making it took most of a
 * verification's time (175 µs a narinfo; 3,000 narinfos checked twice on import).
 */
const publicKeyObjects = new Map<string, KeyObject>();
function publicKeyObject(bytes: Buffer): KeyObject {
  const id = bytes.toString('hex');
  let key = publicKeyObjects.get(id);
  if (!key) {
    key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, bytes]), format: 'der', type: 'spki' });
    publicKeyObjects.set(id, key);
  }
  return key;
}

function parseSecretKey(secretKey: string): { name: string; key: KeyObject; pub: Buffer } {
  const { name, bytes } = splitKey(secretKey.trim(), 'secret');
  if (bytes.length !== 64) throw keyError('secret key must be 64 bytes (seed and public key)', name);
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, bytes.subarray(0, 32)]), format: 'der', type: 'pkcs8' });
  const derived = createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519_PREFIX.length);
  if (!derived.equals(bytes.subarray(32))) throw keyError('secret key halves do not match', name);
  return { name, key, pub: bytes.subarray(32) };
}

function splitKey(text: string, kind: string): { name: string; bytes: Buffer } {
  const colon = text.indexOf(':');
  if (colon <= 0 || colon === text.length - 1) throw keyError(`${kind} key is corrupt`, '');
  const name = text.slice(0, colon);
  try {
    return { name, bytes: decodeBase64(text.slice(colon + 1)) };
  } catch {
    throw keyError(`${kind} key is corrupt`, name);
  }
}

function checkKeyName(name: string): void {
  if (name === '' || /[:\s]/.test(name)) throw keyError(`bad key name '${name}'`, name);
}

function keyError(message: string, name: string): FodderError {
  return new FodderError(KEY_INVALID, message, { keyName: name });
}

function invalid(message: string, fields: Record<string, unknown> = {}): FodderError {
  return new FodderError(NARINFO_INVALID, `invalid narinfo: ${message}`, fields);
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
