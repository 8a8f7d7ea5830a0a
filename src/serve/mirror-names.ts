/**
 * The names a request may ask the mirror for, checked before anything touches the file system:
 * a request's text never becomes a path. A tarball's name is decoded as a hash and the file is
 * found by its hex spelling; a cache file's name must be exactly what the binary cache writes.
 */
import { base64Length, decodeBase64, decodeNix32, hashSizes, isHashAlgo, nix32Length, type HashAlgo } from '../nix-formats/hash.js';

/**
 * `tarballs/<algo>/<name>` as the hex name the hashed mirror stores every file under, whatever
 * spelling the request used (base16 in either case, nix32, base64 or base64url); null when the
 * name is no hash of that algorithm.
 */
export function tarballName(algo: string, name: string): { algo: HashAlgo; hex: string } | null {
  if (!isHashAlgo(algo)) return null;
  const size = hashSizes[algo];
  try {
    if (name.length === size * 2 && /^[0-9a-fA-F]+$/.test(name)) return { algo, hex: name.toLowerCase() };
    if (name.length === nix32Length(size) && NIX32.test(name)) return { algo, hex: decodeNix32(name, size).toString('hex') };
    // base64url may leave its padding out
    const padded = BASE64.test(name) ? name.padEnd(Math.ceil(name.length / 4) * 4, '=') : '';
    if (padded.length === base64Length(size)) {
      const bytes = decodeBase64(padded.replace(/-/g, '+').replace(/_/g, '/'));
      return bytes.length === size ? { algo, hex: bytes.toString('hex') } : null;
    }
  } catch {
    return null;
  }
  return null;
}

const NIX32 = /^[0-9a-df-np-sv-z]+$/;
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/** The cache's file names, as the mirror writes them. */
export { NARINFO_NAME, NAR_NAME } from '../mirror/cache-entry.js';
