/**
 * Flat sources in the binary cache with no second copy: the narinfo of a flat FOD output is
 * `cache/flat/<hash>.narinfo`, and the NAR it names, `nar/flat/<nix32 sha256 of the file>.nar`,
 * exists on no disk: `fodder serve` makes it from `tarballs/sha256/<hex>` as it sends it (the NAR
 * of one regular file is a fixed prefix, the file, zero padding and `)`). A flat output is never
 * executable (Nix refuses a flat fixed output with the executable bit: "should be a
 * non-executable regular file"), so the name needs only the file.
 *
 * The narinfos sit apart from the cache's own (`cache/<hash>.narinfo`) so that a copy of
 * `cache/` read as `file://` or by a static web server, which cannot make these NARs, never
 * sees an entry whose NAR it lacks; such a cache gets flat entries only as real NAR files
 * (`fetch.cache.flat`).
 */
import { join } from 'node:path';
import { decodeNix32, encodeNix32 } from '../nix-formats/hash.js';

/** The folder of `cache/` holding the flat sources' narinfos. */
export const FLAT_NARINFO_DIR = 'flat';

/** `<52 nix32 characters>.nar`: a flat NAR's name under `nar/flat/`. */
export const FLAT_NAR_NAME = /^([0-9a-df-np-sv-z]{52})\.nar$/;

/** The narinfo `URL` of the NAR of the file whose sha256 is `sha256hex`. */
export function flatNarUrl(sha256hex: string): string {
  return `nar/flat/${encodeNix32(Buffer.from(sha256hex, 'hex'))}.nar`;
}

/**
 * The sha256 (hex) of the file a flat NAR's name (under `nar/flat/`) stands for, or null when it
 * is not exactly a name `flatNarUrl` writes (a nix32 spelling is canonical: it must encode back
 * to itself).
 */
export function flatNarSha256(name: string): string | null {
  const m = FLAT_NAR_NAME.exec(name);
  if (!m) return null;
  try {
    const bytes = decodeNix32(m[1], 32);
    return encodeNix32(bytes) === m[1] ? bytes.toString('hex') : null;
  } catch {
    return null;
  }
}

/** The sha256 (hex) of the file a narinfo `URL` names, or null when it is no flat NAR's. */
export function flatNarUrlSha256(url: string): string | null {
  return url.startsWith('nar/flat/') ? flatNarSha256(url.slice('nar/flat/'.length)) : null;
}

/** Where the hashed mirror holds the file of a flat NAR. */
export function flatNarSource(mirrorDir: string, sha256hex: string): string {
  return join(mirrorDir, 'tarballs', 'sha256', sha256hex);
}
