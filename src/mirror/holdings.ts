/**
 * Whether a mirror holds a FOD, and how many bytes it takes there. A flat FOD is held when
 * `tarballs/<algo>/<hex>` exists or the binary cache has its store path; a recursive FOD when
 * the cache has a narinfo for its out path (the one `fodder serve` answers: `cache/`, else
 * `cache/flat/`) and what that narinfo needs (src/mirror/cache-entry.ts).
 * One interface, two readers: a directory (stat) here, a served mirror (HEAD and GET) in
 * src/fetch/remote-mirror.ts.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Fod } from '../graph/types.js';
import { narInfoFileName, parseNarInfo, type NarInfo } from '../nix-formats/narinfo.js';
import { NARINFO_DIRS, narInfoPathOf, narInfoPaths, narSourceOf, type NarSource } from './cache-entry.js';

/** What a mirror holds of one FOD: its size there (the tarball, or the NAR file), null when unknown. */
export type Holding = { held: true; size: number | null } | { held: false };

export interface MirrorView {
  /** the directory or URL, for messages */
  readonly where: string;
  holds(fod: Fod): Promise<Holding>;
}

/** `tarballs/<algo>/<hex>` of a flat FOD's declared hash, relative to the mirror. */
export const tarballPath = (fod: Pick<Fod, 'hash'>): string => `tarballs/${fod.hash.algo}/${fod.hash.hex}`;

/** What a holding rule asks of a mirror; each reader (directory, URL, manifest) answers it its own way. */
export interface HoldingSource {
  /** the size of `tarballs/<algo>/<hex>`, or null when absent */
  tarballSize(algo: Fod['hash']['algo'], hex: string): Promise<number | null>;
  /** the size of what a complete cache entry of the store path needs (its NAR, or the tarball it is made from), or null when there is none */
  cacheEntrySize(storePath: string): Promise<number | null>;
}

/** The holding rule, the same for every reader. */
export async function holdingOf(fod: Fod, src: HoldingSource): Promise<Holding> {
  if (fod.hash.mode === 'flat') {
    const size = await src.tarballSize(fod.hash.algo, fod.hash.hex);
    if (size !== null) return { held: true, size };
  }
  const size = await src.cacheEntrySize(fod.outPath);
  return size === null ? { held: false } : { held: true, size };
}

/** A HoldingSource over files: `sizeOf` a path relative to the mirror (null: absent), `narInfoOf` a narinfo's text by name (null: absent). */
export function fileHoldingSource(sizeOf: (relPath: string) => Promise<number | null>, narInfoOf: (name: string) => Promise<string | null>): HoldingSource {
  return {
    tarballSize: (algo, hex) => sizeOf(`tarballs/${algo}/${hex}`),
    async cacheEntrySize(storePath) {
      const entry = await cacheEntryOf(storePath, narInfoOf);
      return entry ? sizeOf(entry.source.path) : null;
    },
  };
}

/** A narinfo's name, text, what it says and where its NAR comes from. */
export interface CacheEntryText {
  name: string;
  text: string;
  info: NarInfo;
  source: NarSource;
}

/** The narinfo of a store path and what it needs, or null when there is none (or one fodder cannot satisfy). */
export async function cacheEntryOf(storePath: string, narInfoOf: (name: string) => Promise<string | null>): Promise<CacheEntryText | null> {
  let name: string;
  try {
    name = narInfoFileName(storePath);
  } catch {
    return null;
  }
  const text = await narInfoOf(name);
  return text === null ? null : entryOfText(name, text);
}

/** The entry the narinfo `name` with this text gives, or null (unreadable, or a NAR source fodder cannot satisfy). */
function entryOfText(name: string, text: string): CacheEntryText | null {
  try {
    const info = parseNarInfo(text);
    const source = narSourceOf(info);
    return source ? { name, text, info, source } : null;
  } catch {
    return null;
  }
}

/**
 * A lookup, on this thread, of every cache entry of a store path in the mirror at `root` whose
 * NAR source is there: the cache's own (`cache/`), then a flat source's (`cache/flat/`), each
 * only where its kind belongs; `path` is the narinfo's, relative to the mirror, and `size` its NAR
 * source's (`sizeOf` it, relative to the mirror, when the caller knows it). The narinfos made
 * after the lookup was made are not seen.
 */
export function cacheEntriesAt(
  root: string,
): (storePath: string, sizeOf?: (rel: string) => number | null) => (CacheEntryText & { path: string; size: number })[] {
  // the narinfo directories listed once, on this thread: most narinfos a plan asks for are absent,
  // and an existsSync each (6,000 for 3,000 FODs) cost more than the listing
  const listed = NARINFO_DIRS.map((dir) => {
    const names = existsSync(join(root, dir)) ? readdirSync(join(root, dir)) : [];
    return { dir, names: new Set(names.filter((n) => n.endsWith('.narinfo'))) };
  });
  return (storePath, sizeOf = (rel) => fileSizeSync(join(root, rel))) => {
    let name: string;
    try {
      name = narInfoFileName(storePath);
    } catch {
      return [];
    }
    const out: (CacheEntryText & { path: string; size: number })[] = [];
    for (const { dir, names } of listed) {
      if (!names.has(name)) continue;
      const text = textOfSync(join(root, dir, name));
      const entry = text === null ? null : entryOfText(name, text);
      if (!entry || narInfoPathOf(name.slice(0, 32), entry.source) !== `${dir}/${name}`) continue;
      const size = sizeOf(entry.source.path);
      if (size !== null) out.push({ ...entry, path: `${dir}/${name}`, size });
    }
    return out;
  };
}

/** The size of a regular file, or null when there is none. */
export async function fileSize(path: string): Promise<number | null> {
  try {
    const st = await stat(path);
    return st.isFile() ? st.size : null;
  } catch {
    return null;
  }
}

/**
 * The size of a regular file, or null when there is none, read on this thread: for the many
 * small asks of a plan or an import (no trip to libuv's threads, which may be busy copying).
 */
export function fileSizeSync(path: string): number | null {
  const st = statSync(path, { throwIfNoEntry: false });
  return st?.isFile() ? st.size : null;
}

/**
 * A small file's text (a narinfo), or null when it cannot be read; read on this thread, like
 * `fileSizeSync`: four trips to libuv's threads (open, stat, read, close) cost more than the read,
 * 0.19 s of a bundle plan's 0.59 s for 3,163 narinfos. Most narinfos asked for are absent: a failed
 * open costs an error object (about 15 µs of this thread's time), a failed existsSync a few µs.
 */
export const textOf = async (path: string): Promise<string | null> => (existsSync(path) ? textOfSync(path) : null);

/** A small file's text, or null when it cannot be read. */
function textOfSync(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** The narinfo `name` of the mirror at `root` as `fodder serve` answers it: the cache's own, else a flat source's. */
export async function servedNarInfo(root: string, name: string): Promise<string | null> {
  for (const rel of narInfoPaths(name)) {
    const text = await textOf(join(root, rel));
    if (text !== null) return text;
  }
  return null;
}

/** A mirror directory, read with stat and readFile: what `fodder serve` would answer for it. */
export function createDirMirrorView(dir: string): MirrorView {
  const root = resolve(dir);
  const sizeOf = (rel: string) => fileSize(join(root, rel));
  const narInfoOf = (name: string) => servedNarInfo(root, name);
  const src = fileHoldingSource(sizeOf, narInfoOf);
  return { where: root, holds: (fod) => holdingOf(fod, src) };
}
