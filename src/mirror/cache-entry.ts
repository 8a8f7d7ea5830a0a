/**
 * What a binary cache entry needs besides its narinfo, decided in this one place: the NAR file
 * the narinfo names under `cache/nar/`, or, for a flat source whose NAR is made on the fly from
 * the hashed mirror (a narinfo whose URL is no file of `cache/nar/`), the tarball its `CA`
 * names. `--missing`, the manifest, `bundle create` and `bundle import` all ask here.
 */
import { parseCa, type NarInfo } from '../nix-formats/narinfo.js';
import type { HashAlgo } from '../nix-formats/hash.js';

/** `<hash part>.narinfo`: a store path's 32 nix32 characters. */
export const NARINFO_NAME = /^[0-9a-df-np-sv-z]{32}\.narinfo$/;

/** `<nix32 file hash>.nar[.xz|.zst|.bz2]`, a NAR file's name in `cache/nar/` (src/mirror/nar-file.ts). */
export const NAR_NAME = /^[0-9a-df-np-sv-z]{52}\.nar(\.xz|\.zst|\.bz2)?$/;

/** What satisfies a narinfo's NAR: a file under `cache/nar/`, or a tarball of the hashed mirror. */
export type NarSource =
  | { type: 'nar'; /** relative to the mirror: `cache/nar/<name>` */ path: string; name: string }
  | { type: 'tarball'; /** relative to the mirror: `tarballs/<algo>/<hex>` */ path: string; algo: HashAlgo; hex: string };

/** Where a narinfo's NAR comes from, or null when it names nothing fodder can hold (a foreign URL). */
export function narSourceOf(info: NarInfo): NarSource | null {
  const m = /^nar\/([^/]+)$/.exec(info.url);
  if (m && NAR_NAME.test(m[1])) return { type: 'nar', path: `cache/nar/${m[1]}`, name: m[1] };
  if (!info.ca) return null;
  try {
    const ca = parseCa(info.ca);
    if (ca.method !== 'fixed' || ca.mode !== 'flat') return null;
    return { type: 'tarball', path: `tarballs/${ca.algo}/${ca.hex}`, algo: ca.algo, hex: ca.hex };
  } catch {
    return null;
  }
}
