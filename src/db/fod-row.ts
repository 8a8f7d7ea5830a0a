import type { Fod, FodKind, GitSource } from '../graph/types.js';
import type { HashAlgo, HashMode } from '../nix-formats/hash.js';

/** The columns of `fods` as SQL selects them. */
export const FOD_COLUMNS = `f.drv_path, f.out_path, f.name, f.kind, f.hash_algo, f.hash_mode, f.hash_hex, f.hash_sri,
  f.urls_json, f.resolved_urls_json, f.git_json, f.post_fetch`;

export interface FodRow {
  drv_path: string;
  out_path: string;
  name: string;
  kind: string;
  hash_algo: string;
  hash_mode: string;
  hash_hex: string;
  hash_sri: string;
  urls_json: string;
  resolved_urls_json: string;
  git_json: string | null;
  post_fetch: number;
}

/** A `fods` row as the Fod JSON shape. */
export function fodFromRow(r: FodRow): Fod {
  return {
    drvPath: r.drv_path,
    outPath: r.out_path,
    name: r.name,
    kind: r.kind as FodKind,
    hash: { algo: r.hash_algo as HashAlgo, mode: r.hash_mode as HashMode, hex: r.hash_hex, sri: r.hash_sri },
    urls: JSON.parse(r.urls_json) as string[],
    resolvedUrls: JSON.parse(r.resolved_urls_json) as string[],
    git: r.git_json ? (JSON.parse(r.git_json) as GitSource) : null,
    postFetch: r.post_fetch === 1,
  };
}
