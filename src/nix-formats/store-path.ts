/**
 * Store path computation as in Nix's `store-api.cc`: `makeStorePath`, fixed-output paths and
 * text (`builtins.toFile`) paths, plus name checks and splitting a path into its parts.
 */
import { createHash } from 'node:crypto';
import { ErrorCode, FodderError } from '../errors.js';
import { compressHash, decodeNix32, encodeNix32, hashOf, hashSizes, type HashAlgo, type HashMode } from './hash.js';

/** Error code for a bad store path or store path name. */
export const STORE_PATH_INVALID = ErrorCode.STORE_PATH_INVALID;

export const DEFAULT_STORE_DIR = '/nix/store';

/** Longest name Nix allows after the 32-character hash and the dash. */
export const MAX_NAME_LENGTH = 211;

/** Length of the nix32 hash part of a store path basename. */
export const HASH_PART_LENGTH = 32;

/**
 * Throw STORE_PATH_INVALID unless `name` is a valid store path name: 1..211 characters from
 * `[A-Za-z0-9+-._?=]`, not `.`/`..` or starting `.-`/`..-` (current Nix's rule; Nix <= 2.19
 * also refused any leading dot).
 */
export function checkStorePathName(name: string): void {
  const bad = (why: string): never => {
    throw new FodderError(STORE_PATH_INVALID, `store path name '${name}' ${why}`, { name });
  };
  if (name.length === 0) bad('is empty');
  if (name.length > MAX_NAME_LENGTH) bad(`is longer than ${MAX_NAME_LENGTH} characters`);
  if (name === '.' || name === '..' || name.startsWith('.-') || name.startsWith('..-')) bad('is not valid');
  if (!/^[A-Za-z0-9+\-._?=]+$/.test(name)) bad('contains an illegal character');
}

/**
 * Nix's `makeStorePath`: `<storeDir>/<nix32(fold20(sha256(type:sha256:<hex>:<storeDir>:<name>)))>-<name>`.
 * `innerHashHex` is the base16 sha256 digest the path is made from.
 */
export function makeStorePath(type: string, innerHashHex: string, name: string, storeDir: string = DEFAULT_STORE_DIR): string {
  checkStorePathName(name);
  if (!/^[0-9a-f]{64}$/.test(innerHashHex)) {
    throw new FodderError(STORE_PATH_INVALID, `inner hash '${innerHashHex}' is not a lowercase base16 sha256`, { innerHashHex });
  }
  const digest = createHash('sha256').update(`${type}:sha256:${innerHashHex}:${storeDir}:${name}`).digest();
  return `${storeDir}/${encodeNix32(compressHash(digest, 20))}-${name}`;
}

/** A fixed output's hash: algorithm, ingestion mode and base16 digest. */
export interface FixedOutputHash {
  algo: HashAlgo;
  mode: HashMode;
  hex: string;
}

/**
 * The output path of a fixed-output derivation (or any content-addressed path with no
 * references): sha256 + recursive uses type `source` with the NAR hash itself; everything else
 * uses type `output:out` with sha256 of `fixed:out:[r:]<algo>:<hex>:`.
 */
export function fodStorePath(hash: FixedOutputHash, name: string, storeDir: string = DEFAULT_STORE_DIR): string {
  const hex = hash.hex.toLowerCase();
  if (hex.length !== hashSizes[hash.algo] * 2 || !/^[0-9a-f]*$/.test(hex)) {
    throw new FodderError(STORE_PATH_INVALID, `'${hash.hex}' is not a base16 ${hash.algo} digest`, { hash });
  }
  if (hash.algo === 'sha256' && hash.mode === 'recursive') return makeStorePath('source', hex, name, storeDir);
  const prefix = hash.mode === 'recursive' ? 'r:' : '';
  const inner = hashOf('sha256', `fixed:out:${prefix}${hash.algo}:${hex}:`).hex;
  return makeStorePath('output:out', inner, name, storeDir);
}

/**
 * The path `builtins.toFile name text` gets: type `text` followed by `:<ref>` for each
 * reference (full store paths, byte-sorted), made from sha256 of the contents.
 */
export function textStorePath(text: string | Uint8Array, name: string, references: readonly string[] = [], storeDir: string = DEFAULT_STORE_DIR): string {
  const refs = [...new Set(references)].sort(compareBytes);
  const type = ['text', ...refs].join(':');
  return makeStorePath(type, hashOf('sha256', text).hex, name, storeDir);
}

/** The parts of a store path: its directory, 32-character hash part and name. */
export interface StorePathParts {
  storeDir: string;
  hashPart: string;
  name: string;
}

/** Split and validate a full store path (`/nix/store/<hash>-<name>`). */
export function parseStorePath(path: string, storeDir: string = DEFAULT_STORE_DIR): StorePathParts {
  if (!path.startsWith(`${storeDir}/`)) {
    throw new FodderError(STORE_PATH_INVALID, `path '${path}' is not in the Nix store '${storeDir}'`, { path, storeDir });
  }
  const base = path.slice(storeDir.length + 1);
  return { storeDir, ...parseStorePathBase(base) };
}

/** Split and validate a store path basename (`<hash>-<name>`). */
export function parseStorePathBase(base: string): { hashPart: string; name: string } {
  if (base.length < HASH_PART_LENGTH + 2 || base[HASH_PART_LENGTH] !== '-') {
    throw new FodderError(STORE_PATH_INVALID, `'${base}' is not a valid store path basename`, { base });
  }
  const hashPart = base.slice(0, HASH_PART_LENGTH);
  try {
    decodeNix32(hashPart, 20);
  } catch {
    throw new FodderError(STORE_PATH_INVALID, `store path '${base}' has an invalid hash part`, { base });
  }
  const name = base.slice(HASH_PART_LENGTH + 1);
  checkStorePathName(name);
  return { hashPart, name };
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
