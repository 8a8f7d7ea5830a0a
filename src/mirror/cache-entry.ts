/**
 * What a binary cache entry needs besides its narinfo, decided in this one place: the NAR file
 * the narinfo names under `cache/nar/`, or, for a flat source whose NAR `fodder serve` makes on
 * the fly (src/mirror/flat-nar.ts), the file of the hashed mirror its `nar/flat/` URL names.
 * Where each kind of narinfo sits (`cache/`, `cache/flat/`), and what makes an entry admissible
 * (`cacheEntryProblem`). `--missing`, the manifest, `bundle create`, `bundle import` and
 * `fodder verify` all ask here.
 */
import { lstatSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { parseCa, type NarInfo } from '../nix-formats/narinfo.js';
import { fodStorePath } from '../nix-formats/store-path.js';
import { toNix32 } from '../nix-formats/hash.js';
import { FLAT_NARINFO_DIR, flatNarUrlSha256 } from './flat-nar.js';
import { fileDigest, flatNarDigests, type FlatNarDigests, type HashPool } from './hashing.js';

/** `<hash part>.narinfo`: a store path's 32 nix32 characters. */
export const NARINFO_NAME = /^[0-9a-df-np-sv-z]{32}\.narinfo$/;

/** `<nix32 file hash>.nar[.xz|.zst|.bz2]`, a NAR file's name in `cache/nar/` (src/mirror/nar-file.ts). */
export const NAR_NAME = /^[0-9a-df-np-sv-z]{52}\.nar(\.xz|\.zst|\.bz2)?$/;

/**
 * The folders of a mirror holding narinfos, in the order `fodder serve` answers
 * `/<hash>.narinfo`: the cache's own (a NAR file each), then the flat sources' (made on the fly).
 */
export const NARINFO_DIRS = ['cache', `cache/${FLAT_NARINFO_DIR}`] as const;

/** Where the narinfo `name` may be, relative to the mirror, in the order `fodder serve` looks. */
export const narInfoPaths = (name: string): string[] => NARINFO_DIRS.map((d) => `${d}/${name}`);

/** Whether a path relative to a mirror (or a bundle) is a narinfo's: `cache/<hash>.narinfo` or `cache/flat/<hash>.narinfo`. */
export function isNarInfoPath(path: string): boolean {
  const slash = path.lastIndexOf('/');
  return (NARINFO_DIRS as readonly string[]).includes(path.slice(0, slash)) && NARINFO_NAME.test(path.slice(slash + 1));
}

/** What satisfies a narinfo's NAR: a file under `cache/nar/`, or the file of the hashed mirror a flat NAR is made from. */
export type NarSource =
  | { type: 'nar'; /** relative to the mirror: `cache/nar/<name>` */ path: string; name: string }
  | { type: 'flat'; /** relative to the mirror: `tarballs/sha256/<hex>` */ path: string; sha256: string };

/** Where the NAR a narinfo `URL` names comes from, or null when it names nothing fodder can hold (a foreign URL). */
export function narSourceOfUrl(url: string): NarSource | null {
  const m = /^nar\/([^/]+)$/.exec(url);
  if (m && NAR_NAME.test(m[1])) return { type: 'nar', path: `cache/nar/${m[1]}`, name: m[1] };
  const sha256 = flatNarUrlSha256(url);
  return sha256 ? { type: 'flat', path: `tarballs/sha256/${sha256}`, sha256 } : null;
}

/** Where a narinfo's NAR comes from, or null when it names nothing fodder can hold. */
export const narSourceOf = (info: Pick<NarInfo, 'url'>): NarSource | null => narSourceOfUrl(info.url);

/**
 * Where the narinfo of `hashPart` whose NAR comes from `source` belongs, relative to the mirror:
 * a flat NAR's in `cache/flat/` (a cache read as `file://` or by a static server, which cannot
 * make that NAR, never sees it), the others in `cache/`.
 */
export function narInfoPathOf(hashPart: string, source: NarSource): string {
  return `${source.type === 'flat' ? NARINFO_DIRS[1] : NARINFO_DIRS[0]}/${hashPart}.narinfo`;
}

/**
 * What is wrong with the cache entry whose narinfo `info` is (or is to be) at `path` (relative to
 * the mirror `root`), or null when the mirror holds what it needs and it describes that:
 * - it sits where its kind belongs (`narInfoPathOf`);
 * - a NAR file: the file is in `cache/nar/`, and its `FileHash` names it;
 * - a flat source's: no references; its `CA` is a flat fixed output whose hash and name give its
 *   store path; the file its URL names (`tarballs/sha256/<hex>`) is in the mirror, and has the
 *   hash its `CA` names (the hashed mirror links every name of a file to one inode; names
 *   copied apart are hashed); that file's NAR has the narinfo's `NarHash` and `NarSize` (read
 *   once, on `pool`'s threads when large; or `known` by the file's sha256, taken when the file
 *   was put in the mirror).
 * The content of a NAR file is not read: its name is its hash, checked when it was admitted.
 */
export async function cacheEntryProblem(
  root: string,
  path: string,
  info: NarInfo,
  pool?: HashPool,
  known?: (sha256: string) => FlatNarDigests | undefined,
): Promise<string | null> {
  const source = narSourceOf(info);
  if (!source) return `foreign: its URL ${info.url} names no file a mirror holds`;
  const hashPart = path.slice(path.lastIndexOf('/') + 1, -'.narinfo'.length);
  const place = narInfoPathOf(hashPart, source);
  if (place !== path) return `foreign: a narinfo whose URL is ${info.url} belongs in ${place}`;
  const file = join(root, source.path);
  const st = statOrNull(file);
  if (!st?.isFile()) return `its ${source.path} is not in the mirror`;
  if (source.type === 'nar') {
    if (info.fileHash && toNix32(info.fileHash) !== source.name.slice(0, 52)) return `corrupt: its FileHash does not name ${source.path}`;
    return null;
  }
  if (info.references.length) return `corrupt: a flat source's output has no references, it lists ${info.references.length}`;
  let ca;
  try {
    ca = info.ca ? parseCa(info.ca) : null;
  } catch {
    ca = null;
  }
  if (!ca || ca.method !== 'fixed' || ca.mode !== 'flat') return `corrupt: its CA ${info.ca ?? '(none)'} is not a flat fixed output's`;
  const name = info.storePath.slice(info.storePath.lastIndexOf('/') + 34);
  if (fodStorePath(ca, name) !== info.storePath) return `corrupt: its CA ${info.ca} does not give its store path ${info.storePath}`;
  const named = statOrNull(join(root, 'tarballs', ca.algo, ca.hex));
  if (!named?.isFile()) return `its CA names tarballs/${ca.algo}/${ca.hex}, which is not in the mirror`;
  // the file's digests when they were taken as it was put in the mirror (an import), else read now
  const d = known?.(source.sha256) ?? (await flatNarDigests(file, st.size, pool));
  if (d.sha256 !== source.sha256) return `${source.path} hashes to ${d.sha256}`;
  // the hashed mirror links a file's names to one inode; names copied apart (rsync without -H) are checked by content
  const sameFile = ca.algo === 'sha256' ? ca.hex === source.sha256 : named.ino === st.ino && named.dev === st.dev;
  if (!sameFile && (ca.algo === 'sha256' || (await fileDigest(file, ca.algo)) !== ca.hex)) {
    return `its CA names ${ca.algo}:${ca.hex}, which ${source.path} does not have`;
  }
  if (info.narHash.algo !== 'sha256' || d.narHash !== info.narHash.hex || d.narSize !== info.narSize) {
    return `the NAR of ${source.path} is sha256:${d.narHash}, ${d.narSize} bytes; the narinfo says ${info.narHash.algo}:${info.narHash.hex}, ${info.narSize} bytes`;
  }
  return null;
}

/** The file's own status (a symlink is not followed), or null when there is none. */
function statOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}
